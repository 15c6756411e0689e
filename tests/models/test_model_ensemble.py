"""Ensembles: the mean of the members' probabilities, saved and rebuilt like any bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from landslip.errors import BandError, InputError, ModelError
from landslip.models.bundle import (
    BandProfile,
    BundleMeta,
    InputProfile,
    load_bundle,
    read_bundle_meta,
    save_bundle,
)
from landslip.models.engine import OnnxEngine, TorchEngine
from landslip.models.ensemble import EPS, build_ensemble
from landslip.models.export import export_onnx
from landslip.models.onnx_meta import ONNX_CACHE_FILE, matching_onnx
from landslip.models.registry import create_model

PROFILE = InputProfile(dtype="uint16", pixels=100, bands={
    b: BandProfile(p1=1.0, p50=5.0, p99=10.0) for b in ("green", "red", "nir")})


def _member(folder: Path, seed: int, depth: int, threshold: float, *, band_set: str = "grn",
            mean: float = 1.0, profile: InputProfile | None = PROFILE) -> Path:
    """A tiny U-Net run folder (width 4) on 3 bands."""
    torch.manual_seed(seed)
    names = {"grn": ["green", "red", "nir"], "bgr": ["blue", "green", "red"]}[band_set]
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": depth}, in_channels=3,
                      band_set=band_set, band_names=names, mean=[mean, 2.0, 3.0],
                      std=[1.0, 1.0, 1.0], threshold=threshold, patch_size=32,
                      input_profile=profile, training={"best_val": {"f1": 0.5 + seed / 10}})
    save_bundle(folder / "bundle", create_model("unet", 3, width=4, depth=depth), meta)
    return folder


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("members")
    return [_member(root / "a", 1, 2, 0.4), _member(root / "b", 2, 3, 0.7)]


@pytest.fixture(scope="module")
def built(members: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ens") / "ab"
    build_ensemble(members, out)
    return out


def _mean_probability(members: list[Path], x: np.ndarray) -> np.ndarray:
    """The members' mean sigmoid, computed from their own bundles."""
    with torch.inference_mode():
        ps = [torch.sigmoid(load_bundle(m).model(torch.from_numpy(x)))[:, 0] for m in members]
    return (sum(ps) / len(ps)).numpy()  # type: ignore[union-attr]


def test_bundle_records_members_threshold_and_shared_inputs(members: list[Path],
                                                            built: Path) -> None:
    meta = read_bundle_meta(built)
    assert meta.model == "ensemble"
    assert meta.model_params == {"members": [
        {"model": "unet", "params": {"width": 4, "depth": 2}},
        {"model": "unet", "params": {"width": 4, "depth": 3}}]}
    assert meta.threshold == pytest.approx((0.4 + 0.7) / 2)
    assert meta.band_names == ["green", "red", "nir"] and meta.mean == [1.0, 2.0, 3.0]
    assert meta.input_profile == PROFILE and meta.patch_size == 32
    record = meta.training["ensemble"]
    assert [m["threshold"] for m in record["members"]] == [0.4, 0.7]
    assert record["members"][1]["best_val"] == {"f1": 0.7}
    assert record["members"][0]["bundle"] == str(members[0] / "bundle")
    from safetensors import safe_open

    with safe_open(str(built / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith(("members.0.", "members.1.")) for k in keys)
    assert any(k.startswith("members.1.") for k in keys)


def test_rebuilt_model_is_the_mean_of_the_members(members: list[Path], built: Path) -> None:
    bundle = load_bundle(built)
    assert bundle.required_multiple == 8  # lcm(4, 8)
    x = (2 * np.random.default_rng(0).standard_normal((2, 3, 16, 24))).astype(np.float32)
    ref = _mean_probability(members, x)
    p = TorchEngine(bundle.model, channels_last=False).probabilities(x)
    assert float(np.abs(p - ref).max()) < 1e-6
    # TTA on an ensemble: the mean over views of the mean over members.
    ref_tta = np.mean([np.rot90(_mean_probability(members, np.ascontiguousarray(
        np.rot90(x, k, axes=(2, 3)))), -k, axes=(1, 2)) for k in range(4)] + [
        np.rot90(_mean_probability(members, np.ascontiguousarray(
            np.rot90(x, k, axes=(2, 3))[..., ::-1]))[..., ::-1], -k, axes=(1, 2))
        for k in range(4)], axis=0)
    p_tta = TorchEngine(bundle.model).probabilities(x, tta=True)
    assert float(np.abs(p_tta - ref_tta).max()) < 1e-5


def test_onnx_export_agrees_with_torch(members: list[Path], built: Path,
                                       tmp_path: Path) -> None:
    bundle = load_bundle(built)
    assert matching_onnx(bundle) == built / ONNX_CACHE_FILE  # written by build_ensemble
    r = export_onnx(bundle, tmp_path / "e.onnx")
    assert r.max_difference is not None and r.max_difference < 1e-4
    assert r.metadata.required_multiple == 8 and r.metadata.bundle.model == "ensemble"
    x = (2 * np.random.default_rng(1).standard_normal((1, 3, 24, 40))).astype(np.float32)
    p_onnx = OnnxEngine(r.path, threads=1).probabilities(x)
    assert float(np.abs(p_onnx - _mean_probability(members, x)).max()) < 1e-4


def test_logit_is_clamped_to_stay_finite() -> None:
    spec = {"model": "unet", "params": {"width": 4, "depth": 1}}
    model = create_model("ensemble", 1, members=[spec, spec]).eval()
    with torch.no_grad():
        for m in model.members:  # type: ignore[union-attr]
            m.head.bias.fill_(1e4)  # probability 1.0 exactly in float32
        high = model(torch.zeros(1, 1, 4, 4))
        for m in model.members:  # type: ignore[union-attr]
            m.head.bias.fill_(-1e4)
        low = model(torch.zeros(1, 1, 4, 4))
    assert torch.isfinite(high).all() and torch.isfinite(low).all()
    assert torch.allclose(torch.sigmoid(high), torch.tensor(1 - EPS), atol=1e-7)
    assert torch.allclose(torch.sigmoid(low), torch.tensor(EPS), atol=1e-9)


def test_registry_parameters_are_checked() -> None:
    with pytest.raises(ModelError, match="non-empty list"):
        create_model("ensemble", 3)
    with pytest.raises(ModelError, match="member 0 must be"):
        create_model("ensemble", 3, members=[{"name": "unet"}])
    with pytest.raises(ModelError, match="does not take parameter"):
        create_model("ensemble", 3, members=[{"model": "unet", "params": {"widht": 4}}])


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("bands", BandError, "must read the same bands"),
        ("mean", ModelError, "must share the input normalisation"),
        ("profile", ModelError, "must share the training input profile"),
        ("no-profile", ModelError, "must share the training input profile"),
    ],
)
def test_members_that_cannot_share_an_input_are_refused(
    members: list[Path], tmp_path: Path, kind: str, error: type[Exception], message: str
) -> None:
    other = {"bands": {"band_set": "bgr", "profile": InputProfile(
        dtype="uint16", pixels=100, bands={b: BandProfile(p1=1.0, p50=5.0, p99=10.0)
                                          for b in ("blue", "green", "red")})},
             "mean": {"mean": 1.5},
             "profile": {"profile": PROFILE.model_copy(update={"dtype": "uint8"})},
             "no-profile": {"profile": None}}[kind]
    odd = _member(tmp_path / "odd", 3, 2, 0.5, **other)  # type: ignore[arg-type]
    with pytest.raises(error, match=message) as err:
        build_ensemble([members[0], odd], tmp_path / "out")
    assert str(members[0] / "bundle") in str(err.value) and str(odd / "bundle") in str(err.value)
    assert not (tmp_path / "out").exists()


def test_bad_member_lists_are_refused(members: list[Path], built: Path,
                                      tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 2 members, got 1"):
        build_ensemble(members[:1], tmp_path / "out")
    with pytest.raises(ModelError, match="no model bundle"):
        build_ensemble([members[0], tmp_path], tmp_path / "out")
    with pytest.raises(InputError, match="listed twice"):
        build_ensemble([members[0], members[0] / "bundle"], tmp_path / "out")
    with pytest.raises(InputError, match="already holds a model bundle"):
        build_ensemble(members, members[1])
    with pytest.raises(InputError, match="already holds a model bundle"):
        build_ensemble(members, built)
    assert not (tmp_path / "out").exists()
