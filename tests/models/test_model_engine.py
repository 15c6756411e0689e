"""Prediction engines: selection rules, agreement of PyTorch and ONNX Runtime, shape checks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from landslip.errors import InputError, ModelError
from landslip.models import engine as engine_mod
from landslip.models.bundle import Bundle, BundleMeta, load_bundle, save_bundle
from landslip.models.engine import (
    DEFAULT_WINDOWS,
    FALLBACK_WINDOW,
    OnnxEngine,
    TorchEngine,
    create_engine,
    default_threads,
    resolve_engine,
)
from landslip.models.export import export_onnx, export_onnx_bytes
from landslip.models.onnx_meta import ONNX_CACHE_FILE
from landslip.models.registry import create_model

PARAMS = {"width": 4, "depth": 2}


def _save(folder: Path, seed: int) -> Bundle:
    torch.manual_seed(seed)
    meta = BundleMeta(model="unet", model_params=PARAMS, in_channels=3, band_set="grn",
                      band_names=["green", "red", "nir"], mean=[0.0] * 3, std=[1.0] * 3)
    save_bundle(folder / "bundle", create_model("unet", 3, **PARAMS), meta)
    return load_bundle(folder)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, bytes]:
    bundle = _save(tmp_path_factory.mktemp("engine") / "run", seed=1)
    return bundle, export_onnx_bytes(bundle)


def _reference(bundle: Bundle, x: np.ndarray, tta: bool) -> np.ndarray:
    """sigmoid(model(x)) in the default layout; with TTA, the mean over 8 dihedral views."""
    model = create_model("unet", 3, **PARAMS).eval()
    model.load_state_dict(bundle.model.state_dict())
    views = [(k, f) for k in range(4) for f in (False, True)] if tta else [(0, False)]
    out = torch.zeros((x.shape[0], 1, *x.shape[2:]))
    with torch.inference_mode():
        for k, flip in views:
            v = torch.rot90(torch.from_numpy(x), k, dims=(2, 3))
            v = torch.flip(v, dims=(3,)) if flip else v
            p = torch.sigmoid(model(v))
            p = torch.flip(p, dims=(3,)) if flip else p
            out += torch.rot90(p, -k, dims=(2, 3))
    return (out / len(views))[:, 0].numpy()


@pytest.mark.parametrize("tta", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 32, 48), (1, 3, 64, 36)])
def test_engines_agree_with_the_torch_reference(
    setup: tuple[Bundle, bytes], shape: tuple[int, ...], tta: bool
) -> None:
    bundle, data = setup
    x = (2 * np.random.default_rng(shape[2]).standard_normal(shape)).astype(np.float32)
    ref = _reference(bundle, x, tta)
    for engine in (TorchEngine(bundle.model), OnnxEngine(data, threads=1)):
        p = engine.probabilities(x, tta=tta)
        assert p.shape == (shape[0], *shape[2:]) and p.dtype == np.float32
        assert p.flags.c_contiguous
        assert float(np.abs(p - ref).max()) < 1e-4, engine.name


def test_tta_leaves_an_equivariant_model_unchanged(tmp_path: Path) -> None:
    """A U-Net whose every kernel is symmetric under the 8 flips/rotations commutes with them
    (pooling cells stay aligned: H and W are multiples of 2**depth), so TTA changes nothing,
    on a non-square input too (rotated views are W x H), in both engines."""
    torch.manual_seed(3)
    model = create_model("unet", 3, **PARAMS)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                w = m.weight
                views = [torch.rot90(w, k, dims=(2, 3)) for k in range(4)]
                views += [torch.flip(v, dims=(3,)) for v in views]
                w.copy_(torch.stack(views).mean(dim=0))
        model.head.weight.mul_(50.0)  # type: ignore[union-attr,operator]  # spread the output
    meta = BundleMeta(model="unet", model_params=PARAMS, in_channels=3, band_set="grn",
                      band_names=["green", "red", "nir"], mean=[0.0] * 3, std=[1.0] * 3)
    save_bundle(tmp_path / "bundle", model, meta)
    bundle = load_bundle(tmp_path)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 44)).astype(np.float32)
    for engine in (TorchEngine(bundle.model), OnnxEngine(export_onnx_bytes(bundle))):
        plain, tta = engine.probabilities(x), engine.probabilities(x, tta=True)
        assert tta.shape == plain.shape == (2, 32, 44)
        assert float(np.abs(tta - plain).max()) < 1e-5, engine.name
        assert float(plain.std()) > 1e-2  # not a constant map


def test_torch_engine_runs_channels_last_on_cpu(setup: tuple[Bundle, bytes]) -> None:
    bundle, _ = setup
    engine = TorchEngine(bundle.model)
    assert engine.channels_last and "channels_last" in engine.description
    conv = next(m for m in bundle.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not bundle.model.training
    assert not TorchEngine(bundle.model, channels_last=False).channels_last


def test_onnx_engine_session_settings(setup: tuple[Bundle, bytes]) -> None:
    _, data = setup
    engine = OnnxEngine(data, threads=2)
    options = engine.session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert engine.session.get_providers() == ["CPUExecutionProvider"]
    assert engine.required_multiple == 4 and engine.in_channels == 3
    assert engine.metadata.bundle.band_set == "grn"


@pytest.mark.parametrize(
    ("shape", "message"),
    [((3, 32, 32), r"\(N, C, H, W\)"), ((1, 4, 32, 32), "3 band"), ((1, 3, 30, 32), "pad to 32")],
)
def test_bad_shapes_are_refused(
    setup: tuple[Bundle, bytes], shape: tuple[int, ...], message: str
) -> None:
    bundle, data = setup
    x = np.zeros(shape, dtype=np.float32)
    for engine in (TorchEngine(bundle.model), OnnxEngine(data)):
        with pytest.raises(ModelError, match=message):
            engine.probabilities(x)


def test_resolve_engine_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_engine("auto", cpu) == "onnx"
    assert resolve_engine("auto", cuda) == "torch"
    assert resolve_engine("torch", cpu) == "torch"
    assert resolve_engine("onnx", cuda) == "onnx"
    with pytest.raises(InputError, match=r"unknown engine 'tensorrt'.*auto, torch, onnx"):
        resolve_engine("tensorrt", cpu)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert resolve_engine("auto", cpu) == "torch"


def test_create_engine_picks_and_refuses(
    setup: tuple[Bundle, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, _ = setup
    before = torch.get_num_threads()
    with create_engine(bundle, "torch", "cpu", threads=before + 1) as engine:
        assert isinstance(engine, TorchEngine) and engine.threads == before + 1
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before  # leaving the engine restores the count
    with create_engine(bundle, "torch", "cpu") as engine:  # default: every usable core
        assert engine.threads == default_threads() >= 1
    for bad in (0, -2, True):
        with pytest.raises(InputError, match="threads must be a positive integer"):
            create_engine(bundle, "torch", "cpu", threads=bad)
    with pytest.raises(InputError, match="unknown engine"):
        create_engine(bundle, "fast")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            create_engine(bundle, "onnx", "cuda")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert isinstance(create_engine(bundle, "auto", "cpu"), TorchEngine)
    with pytest.raises(ModelError, match=r"onnxruntime package is not installed.*--engine torch"):
        create_engine(bundle, "onnx", "cpu")


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(),
                    reason="this onnxruntime has a CUDA provider")
def test_onnx_engine_without_cuda_provider_is_refused(setup: tuple[Bundle, bytes]) -> None:
    _, data = setup
    with pytest.raises(InputError, match="onnxruntime-gpu or use --engine torch"):
        OnnxEngine(data, device="cuda")


def test_auto_on_cpu_reuses_a_matching_export_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _save(tmp_path / "run", seed=2)
    export_onnx(bundle, bundle.path / ONNX_CACHE_FILE, check=False)
    calls: list[int] = []
    real = engine_mod.OnnxEngine.__init__

    def spy(self: OnnxEngine, model: str | Path | bytes, *args: object) -> None:
        calls.append(0 if isinstance(model, bytes) else 1)
        real(self, model, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_mod.OnnxEngine, "__init__", spy)
    engine = create_engine(bundle, "auto", "cpu", threads=1)
    assert isinstance(engine, OnnxEngine) and calls == [1]  # the file, not a new export
    # new weights in the same folder: the stale model.onnx must not be used
    newer = _save(tmp_path / "run", seed=3)
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    engine = create_engine(newer, "auto", "cpu", threads=1)
    assert calls == [1, 0]
    assert float(np.abs(engine.probabilities(x) - _reference(newer, x, False)).max()) < 1e-4


def test_onnx_engine_refuses_missing_and_foreign_files(
    setup: tuple[Bundle, bytes], tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match="not found"):
        OnnxEngine(tmp_path / "none.onnx")
    import onnx

    proto = onnx.load_model_from_string(setup[1])
    del proto.metadata_props[:]
    with pytest.raises(ModelError, match="without landslip metadata"):
        OnnxEngine(proto.SerializeToString())
    with pytest.raises(ModelError, match="cannot load"):
        OnnxEngine(b"garbage")


def test_default_window_follows_engine_and_device(setup: tuple[Bundle, bytes]) -> None:
    bundle, data = setup
    assert OnnxEngine(data).default_window == DEFAULT_WINDOWS[("onnx", "cpu")]
    engine = TorchEngine(bundle.model)
    assert engine.default_window == DEFAULT_WINDOWS[("torch", "cpu")]
    engine.device = torch.device("mps")  # a device without a measured default
    assert engine.default_window == FALLBACK_WINDOW
    engine.close()
