"""Model bundle: safetensors + JSON round trip, no pickles, refusals with clear errors."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from landslip.errors import BandError, ModelError
from landslip.models.bundle import BundleMeta, find_bundle, load_bundle, save_bundle
from landslip.models.registry import create_model
from landslip.spectral.bands import normalize, resolve_band_set


def _meta(**kw: object) -> BundleMeta:
    base = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=3,
                      band_set="bg-ndvi", band_names=["blue", "green", "ndvi"],
                      mean=[400.0, 600.0, 0.5], std=[50.0, 60.0, 0.2], threshold=0.4,
                      patch_size=32, dataset_fingerprint="abc123",
                      training={"epochs": 2})
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = create_model("unet", 3, width=4, depth=2)
    run = tmp_path / "run"
    save_bundle(run / "bundle", model, _meta())
    return run, model


def test_roundtrip_weights_and_meta(saved: tuple[Path, torch.nn.Module]) -> None:
    run, model = saved
    for where in (run, run / "bundle", run / "bundle" / "model.json"):
        b = load_bundle(where)
        assert b.path == run / "bundle"
        assert not b.model.training
        for (k1, v1), (k2, v2) in zip(model.state_dict().items(),
                                      b.model.state_dict().items(), strict=True):
            assert k1 == k2 and torch.equal(v1, v2)
    assert b.meta == _meta()
    assert b.band_set.names == ("blue", "green", "ndvi")
    assert (b.mean, b.std, b.threshold) == ([400.0, 600.0, 0.5], [50.0, 60.0, 0.2], 0.4)
    assert b.required_multiple == 4
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(b.model(x), model.eval()(x))


def test_files_hold_no_pickle(saved: tuple[Path, torch.nn.Module]) -> None:
    run, _ = saved
    assert sorted(p.name for p in (run / "bundle").iterdir()) == ["model.json",
                                                                  "model.safetensors"]
    raw = (run / "bundle" / "model.safetensors").read_bytes()
    assert raw[:1] != b"\x80"  # pickle protocol marker
    (n,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 header length + JSON header
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"]["format"] == "landslip-bundle"
    meta = json.loads((run / "bundle" / "model.json").read_text())
    assert list(meta)[:2] == ["format", "version"]
    assert meta["format"] == "landslip-bundle" and meta["version"] == 1
    for key in ("model", "model_params", "in_channels", "band_set", "band_names", "mean", "std",
                "threshold", "patch_size", "dataset_fingerprint", "landslip_version",
                "training"):
        assert key in meta


def test_band_check_refuses_missing_bands(saved: tuple[Path, torch.nn.Module]) -> None:
    b = load_bundle(saved[0])
    b.check_bands(["blue", "green", "red", "nir"])
    with pytest.raises(BandError, match=r"bg-ndvi.*needs raw band\(s\) nir.*blue, green, red"):
        b.check_bands(["blue", "green", "red"])


def test_inputs_match_training_normalisation(saved: tuple[Path, torch.nn.Module]) -> None:
    b = load_bundle(saved[0])
    rng = np.random.default_rng(0)
    raw = rng.integers(1, 3000, size=(4, 8, 8)).astype(np.uint16)
    raw[:, 0, 0] = 0
    x, valid = b.inputs(raw, ["blue", "green", "red", "nir"], nodata=0)
    bands, v = resolve_band_set("bg-ndvi").compute(raw, ["blue", "green", "red", "nir"], 0)
    assert np.array_equal(valid, v) and not valid[0, 0]
    assert np.allclose(x, normalize(bands, b.mean, b.std, v))


def test_refuses_other_format_newer_version_and_bad_weights(
    saved: tuple[Path, torch.nn.Module], tmp_path: Path
) -> None:
    run, _ = saved
    meta_path = run / "bundle" / "model.json"
    good = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**good, "format": "other"}))
    with pytest.raises(ModelError, match="not a landslip model bundle"):
        load_bundle(run)
    meta_path.write_text(json.dumps({**good, "version": 2}))
    with pytest.raises(ModelError, match="version 2 is not supported"):
        load_bundle(run)
    meta_path.write_text(json.dumps({k: v for k, v in good.items() if k != "mean"}))
    with pytest.raises(ModelError, match="missing field"):
        load_bundle(run)
    meta_path.write_text(json.dumps({**good, "model_params": {"width": 8, "depth": 2}}))
    with pytest.raises(ModelError, match="do not fit"):
        load_bundle(run)
    with pytest.raises(ModelError, match="no model bundle"):
        find_bundle(tmp_path / "nowhere")


def test_save_validates_meta(tmp_path: Path) -> None:
    model = create_model("unet", 3, width=4, depth=2)
    with pytest.raises(ModelError, match="mean must list 3"):
        save_bundle(tmp_path / "b", model, _meta(mean=[1.0]))
    with pytest.raises(ModelError, match="model takes 3"):
        save_bundle(tmp_path / "b", model, _meta(in_channels=4, band_set="bgrn",
                                                 band_names=["blue", "green", "red", "nir"],
                                                 mean=[0.0] * 4, std=[1.0] * 4))
    assert not (tmp_path / "b" / "model.json").exists()
