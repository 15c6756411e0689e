"""Model bundle: safetensors + JSON round trip, no pickles, refusals with clear errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from landslip.errors import BandError, ModelError
from landslip.models.bundle import (
    BUNDLE_VERSION,
    BundleMeta,
    find_bundle,
    load_bundle,
    read_bundle_meta,
    save_bundle,
)
from landslip.models.registry import create_model
from landslip.spectral.bands import normalize, resolve_band_set


def _meta(**kw: Any) -> BundleMeta:
    fields: dict[str, Any] = dict(
        model="unet", model_params={"width": 4, "depth": 2}, in_channels=3, band_set="bg-ndvi",
        band_names=["blue", "green", "ndvi"], mean=[400.0, 600.0, 0.5], std=[50.0, 60.0, 0.2],
        threshold=0.4, patch_size=32, dataset_fingerprint="abc123", training={"epochs": 2})
    return BundleMeta(**{**fields, **kw})


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
    meta_path.write_text(json.dumps({**good, "format": "landslip-dataset"}))
    with pytest.raises(ModelError, match=r"is not a landslip-bundle document \(format is "
                       r"'landslip-dataset'"):
        load_bundle(run)
    meta_path.write_text(json.dumps({**good, "version": BUNDLE_VERSION + 1}))
    with pytest.raises(ModelError, match=rf"landslip-bundle version {BUNDLE_VERSION + 1}, newer "
                       r"than landslip .* reads \(1\); upgrade landslip"):
        load_bundle(run)
    meta_path.write_text(json.dumps({k: v for k, v in good.items() if k != "version"}))
    with pytest.raises(ModelError, match="no valid format version"):
        read_bundle_meta(run)
    meta_path.write_text(json.dumps({k: v for k, v in good.items() if k != "mean"}))
    with pytest.raises(ModelError, match=r"model\.json: mean: missing field; the bundle is "):
        load_bundle(run)
    meta_path.write_text(json.dumps({**good, "std": [1.0, 0.0, 2.0], "in_channels": "three"}))
    with pytest.raises(ModelError) as err:
        read_bundle_meta(run)
    assert "in_channels: Input should be a valid integer" in str(err.value)
    assert "std.1: Input should be greater than 0" in str(err.value)
    assert "\n" not in str(err.value)
    meta_path.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        read_bundle_meta(run)
    meta_path.write_text(json.dumps({**good, "model_params": {"width": 8, "depth": 2}}))
    with pytest.raises(ModelError, match="do not fit"):
        load_bundle(run)
    with pytest.raises(ModelError, match="no model bundle"):
        find_bundle(tmp_path / "nowhere")


def test_unknown_fields_are_ignored_with_a_warning(
    saved: tuple[Path, torch.nn.Module], caplog: pytest.LogCaptureFixture
) -> None:
    run, _ = saved
    meta_path = run / "bundle" / "model.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "colour": "red"}))
    assert read_bundle_meta(run) == _meta()
    assert "ignoring unknown field(s) colour" in caplog.text


def test_meta_is_validated_when_built(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="mean must list 3 values"):
        _meta(mean=[1.0])
    with pytest.raises(ValidationError, match="threshold"):
        _meta(threshold=1.0)
    with pytest.raises(ValidationError, match="format"):
        _meta(format="other")
    with pytest.raises(ValidationError, match="version"):
        _meta(version=BUNDLE_VERSION + 1)
    model = create_model("unet", 3, width=4, depth=2)
    with pytest.raises(ModelError, match="model takes 3"):
        save_bundle(tmp_path / "b", model, _meta(in_channels=4, band_set="bgrn",
                                                 band_names=["blue", "green", "red", "nir"],
                                                 mean=[0.0] * 4, std=[1.0] * 4))
    assert not (tmp_path / "b" / "model.json").exists()


def test_lazy_bundle_reads_the_weights_on_first_use(
        saved: tuple[Path, torch.nn.Module]) -> None:
    """``weights="lazy"``: metadata now, the network on first use of ``.model`` (same weights);
    damaged weights are refused then, and a missing weights file at once."""
    bundle_dir, model = saved
    lazy = load_bundle(bundle_dir, weights="lazy")
    assert lazy._model is None and lazy.meta == load_bundle(bundle_dir).meta
    for name, value in lazy.model.state_dict().items():
        assert torch.equal(value, model.state_dict()[name])
    assert lazy.required_multiple == load_bundle(bundle_dir).required_multiple
    weights = find_bundle(bundle_dir) / "model.safetensors"
    weights.write_bytes(b"not safetensors")
    broken = load_bundle(bundle_dir, weights="lazy")
    with pytest.raises(ModelError, match="cannot read weights"):
        _ = broken.model
    weights.unlink()
    with pytest.raises(ModelError, match=r"has no model\.safetensors"):
        load_bundle(bundle_dir, weights="lazy")
