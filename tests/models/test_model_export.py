"""ONNX export: ONNX Runtime agrees with PyTorch, the metadata round-trips, bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from landslip.dataset.checksums import sha256_file
from landslip.errors import InputError, ModelError
from landslip.models import export as export_mod
from landslip.models.bundle import WEIGHTS_FILE, Bundle, BundleMeta, load_bundle, save_bundle
from landslip.models.export import ensure_onnx, export_onnx
from landslip.models.onnx_meta import (
    INPUT_NAME,
    ONNX_CACHE_FILE,
    ONNX_FORMAT,
    OUTPUT_NAME,
    matching_onnx,
    read_onnx_metadata,
)
from landslip.models.registry import create_model

BANDS = {3: ["green", "red", "nir"], 4: ["blue", "green", "red", "nir"]}
BAND_SETS = {3: "grn", 4: "bgrn"}

# (model, params, bands): width 8 with the paper's shape (depth 4, transposed convolutions),
# and the parameter-free up-sampling variants (bilinear, nearest) at other depths.
CONFIGS = [
    ("unet", {"width": 8}, 4),
    ("unet", {"width": 4, "depth": 3, "upsampling": "bilinear"}, 4),
    ("unet", {"width": 4, "depth": 2, "upsampling": "nearest"}, 3),
]


def _save(folder: Path, model: str, params: dict[str, Any], bands: int, seed: int = 0) -> Bundle:
    torch.manual_seed(seed)
    meta = BundleMeta(model=model, model_params=params, in_channels=bands,
                      band_set=BAND_SETS[bands], band_names=BANDS[bands],
                      mean=[100.0 + i for i in range(bands)], std=[10.0 + i for i in range(bands)],
                      threshold=0.42, patch_size=64, dataset_fingerprint="ab" * 32,
                      training={"epochs": 3, "best": {"f1": 0.5}})
    save_bundle(folder / "bundle", create_model(model, bands, **params), meta)
    return load_bundle(folder)


def _config_id(config: tuple[str, dict[str, Any], int]) -> str:
    return "-".join([config[0], *map(str, config[1].values()), f"{config[2]}bands"])


@pytest.fixture(scope="module", params=CONFIGS, ids=_config_id)
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Bundle, Path]:
    model, params, bands = request.param
    root = tmp_path_factory.mktemp("export")
    bundle = _save(root / "run", model, params, bands)
    out = root / "out" / "model.onnx"
    result = export_onnx(root / "run", out)
    assert result.path == out and out.stat().st_size == result.bytes
    assert result.max_difference is not None and result.max_difference < 1e-4
    assert result.exporter == "torchscript"  # the fast exporter, checked like the other
    return bundle, out


def _torch_probabilities(bundle: Bundle, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.sigmoid(bundle.model(torch.from_numpy(x))).numpy()


@pytest.mark.parametrize("shape", [(2, 64, 48), (1, 96, 128)])
def test_onnxruntime_agrees_with_torch(
    exported: tuple[Bundle, Path], shape: tuple[int, int, int]
) -> None:
    bundle, path = exported
    n, h, w = shape
    x = np.random.default_rng(h).standard_normal((n, bundle.meta.in_channels, h, w))
    x = (3 * x).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    p_onnx = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    p_torch = _torch_probabilities(bundle, x)
    assert p_onnx.shape == (n, 1, h, w) and p_onnx.dtype == np.float32
    assert p_onnx.min() >= 0.0 and p_onnx.max() <= 1.0  # probabilities, not logits
    assert float(np.abs(p_onnx - p_torch).max()) < 1e-4


def test_graph_has_dynamic_batch_height_width(exported: tuple[Bundle, Path]) -> None:
    bundle, path = exported
    graph = onnx.load(str(path)).graph
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    dims = inp.type.tensor_type.shape.dim
    assert dims[1].dim_value == bundle.meta.in_channels
    assert all(dims[i].dim_param for i in (0, 2, 3))
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_metadata_round_trip(exported: tuple[Bundle, Path]) -> None:
    bundle, path = exported
    meta = read_onnx_metadata(path)
    assert meta.bundle == bundle.meta
    assert meta.required_multiple == bundle.required_multiple
    assert meta.weights_sha256 == sha256_file(bundle.path / WEIGHTS_FILE)
    assert (meta.input_name, meta.output_name) == (INPUT_NAME, OUTPUT_NAME)
    props = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert props["format"] == ONNX_FORMAT and props["version"] == 1
    for key in ("band_set", "band_names", "mean", "std", "threshold", "required_multiple",
                "model", "model_params", "in_channels", "patch_size", "dataset_fingerprint",
                "landslip_version", "probability_encoding"):
        assert key in props, key
    assert props["threshold"] == 0.42 and props["mean"] == bundle.meta.mean
    assert read_onnx_metadata(path.read_bytes()) == meta


def _rewrite(path: Path, target: Path, **changes: str | None) -> Path:
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(target))
    return target


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": None}, "without landslip metadata"),
        ({"format": '"something-else"'}, "is not a landslip-onnx"),
        ({"version": "99"}, "upgrade landslip"),
        ({"mean": "[1.0]"}, "mean must list"),
        ({"required_multiple": "0"}, "required_multiple"),
        ({"threshold": "not json"}, "not JSON"),
    ],
)
def test_bad_metadata_is_refused(
    exported: tuple[Bundle, Path], tmp_path: Path, changes: dict[str, str | None], message: str
) -> None:
    _, path = exported
    bad = _rewrite(path, tmp_path / "bad.onnx", **changes)
    with pytest.raises(ModelError, match=message) as info:
        read_onnx_metadata(bad)
    assert "\n" not in str(info.value)


def test_non_onnx_and_missing_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\xfe not a protobuf at all \x00\x01")
    with pytest.raises(ModelError, match=r"not an ONNX model|cannot read"):
        read_onnx_metadata(junk)
    with pytest.raises(ModelError, match="not found"):
        read_onnx_metadata(tmp_path / "missing.onnx")


def test_export_refuses_folder_output_and_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        export_onnx(tmp_path, tmp_path)
    with pytest.raises(ModelError, match="no model bundle"):
        export_onnx(tmp_path / "nothing", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_failed_check_leaves_no_file(
    exported: tuple[Bundle, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, _ = exported
    monkeypatch.setattr(export_mod, "MAX_CHECK_DIFFERENCE", -1.0)
    with pytest.raises(ModelError, match="disagrees with PyTorch"):
        export_onnx(bundle, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def _agrees(bundle: Bundle, path: Path) -> bool:
    x = np.random.default_rng(5).standard_normal((2, bundle.meta.in_channels, 32, 80))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    p_onnx = session.run([OUTPUT_NAME], {INPUT_NAME: x.astype(np.float32)})[0]
    return float(np.abs(p_onnx - _torch_probabilities(bundle, x.astype(np.float32))).max()) < 1e-4


def test_dynamo_exporter_takes_over_when_torchscript_fails_or_disagrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torch without the TorchScript exporter, or a traced graph that fails the check (a
    shape baked in, say): the torch.export-based exporter is used, and checked too."""
    bundle = _save(tmp_path / "run", "unet", {"width": 4, "depth": 2}, 3)

    def missing(*args: object) -> None:
        raise RuntimeError("the TorchScript exporter was removed")

    with monkeypatch.context() as m:
        m.setattr(export_mod, "_export_torchscript", missing)
        out = export_onnx(bundle, tmp_path / "a.onnx")
    assert out.exporter == "dynamo" and _agrees(bundle, out.path)
    real = export_mod._check_against_torch
    checked: list[int] = []

    def first_fails(b: Bundle, data: bytes) -> float:
        checked.append(len(data))
        if len(checked) == 1:
            raise ModelError("disagrees with PyTorch (test)")
        return real(b, data)

    monkeypatch.setattr(export_mod, "_check_against_torch", first_fails)
    out = export_onnx(bundle, tmp_path / "b.onnx")
    assert out.exporter == "dynamo" and len(checked) == 2 and _agrees(bundle, out.path)
    monkeypatch.setattr(export_mod, "_export_torchscript", missing)
    monkeypatch.setattr(export_mod, "_export_dynamo", missing)
    with pytest.raises(ModelError, match="torchscript exporter: the TorchScript exporter was "
                                         "removed; dynamo exporter") as info:
        export_onnx(bundle, tmp_path / "c.onnx")
    assert "\n" not in str(info.value) and not (tmp_path / "c.onnx").exists()


def test_ensure_onnx_writes_once_and_again_for_new_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _save(tmp_path / "run", "unet", {"width": 4, "depth": 2}, 3)
    assert matching_onnx(bundle) is None
    path = ensure_onnx(tmp_path / "run")
    assert path == bundle.path / ONNX_CACHE_FILE and _agrees(bundle, path)
    assert matching_onnx(bundle) == path
    calls: list[object] = []
    monkeypatch.setattr(export_mod, "export_onnx", lambda *a, **k: calls.append(a))
    assert ensure_onnx(bundle) == path and calls == []  # up to date: nothing exported
    monkeypatch.undo()
    newer = _save(tmp_path / "run", "unet", {"width": 4, "depth": 2}, 3, seed=7)
    assert matching_onnx(newer) is None  # model.onnx holds the old weights
    assert ensure_onnx(newer) == path and matching_onnx(newer) == path and _agrees(newer, path)
    path.write_bytes(b"broken")
    assert matching_onnx(newer) is None
    assert ensure_onnx(newer) == path and _agrees(newer, path)


@pytest.mark.slow
def test_unet_paper_exports_and_agrees(tmp_path: Path) -> None:
    bundle = _save(tmp_path / "run", "unet-paper", {}, 4)
    out = export_onnx(bundle, tmp_path / "paper.onnx")
    assert out.max_difference is not None and out.max_difference < 1e-4
    x = np.random.default_rng(0).standard_normal((1, 4, 48, 80)).astype(np.float32)
    session = ort.InferenceSession(str(out.path), providers=["CPUExecutionProvider"])
    p_onnx = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    assert float(np.abs(p_onnx - _torch_probabilities(bundle, x)).max()) < 1e-4
