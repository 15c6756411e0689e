"""``synth --pre``: the same ground before the landslides, on another date."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from landslip.synthetic.scene import SceneResult, make_scene

SIZE = 256


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneResult:
    return make_scene(tmp_path_factory.mktemp("pre") / "s", size=SIZE, seed=3, dem=True,
                      pre=True, preview=False)


def _read(path: Path | None) -> np.ndarray:
    assert path is not None
    with rasterio.open(path) as ds:
        return ds.read().astype(np.float64)


def _ndvi(ms: np.ndarray) -> np.ndarray:
    return (ms[3] - ms[2]) / (ms[3] + ms[2])


def test_pre_files_share_the_grids_and_band_names(scene: SceneResult) -> None:
    assert scene.pre_pan is not None and scene.pre_ms is not None
    with rasterio.open(scene.pre_ms) as pre, rasterio.open(scene.ms) as post:
        assert pre.transform == post.transform and pre.crs == post.crs
        assert pre.descriptions == post.descriptions == ("blue", "green", "red", "nir")
    with rasterio.open(scene.pre_pan) as pre, rasterio.open(scene.pan) as post:
        assert pre.shape == post.shape and pre.transform == post.transform
    with rasterio.open(scene.dem) as dem:  # type: ignore[arg-type]
        assert dem.descriptions == ("dem",)
    meta = json.loads(scene.scene_json.read_text())["pre"]
    assert meta["acquisition_utc"].startswith("2018-08-20")
    assert meta["sun"]["elevation_deg"] > 45 and meta["offset_m"] == [1.1, -0.7]


def test_scars_are_vegetated_before_and_the_rest_is_the_same_ground(scene: SceneResult) -> None:
    post, pre = _read(scene.ms), _read(scene.pre_ms)
    truth = _read(scene.truth)[0]
    m = SIZE // 4
    blocks = truth.reshape(m, 4, m, 4)
    scar = blocks.mean(axis=(1, 3)) == 1
    clear = blocks.max(axis=(1, 3)) == 0
    assert scar.sum() > 20
    assert _ndvi(post)[scar].mean() < 0.25 < 0.45 < _ndvi(pre)[scar].mean()
    # away from the scars the ground is the same (another sun and season, not other land)
    assert np.corrcoef(_ndvi(post)[clear], _ndvi(pre)[clear])[0, 1] > 0.8
    pan_post, pan_pre = _read(scene.pan)[0], _read(scene.pre_pan)[0]
    assert np.corrcoef(pan_post[truth == 0], pan_pre[truth == 0])[0, 1] > 0.8
    assert not np.array_equal(pan_post[truth == 0], pan_pre[truth == 0])


def test_pre_does_not_change_the_post_event_files(scene: SceneResult, tmp_path: Path) -> None:
    plain = make_scene(tmp_path / "plain", size=SIZE, seed=3, dem=True, preview=False)
    for a, b in ((plain.pan, scene.pan), (plain.ms, scene.ms), (plain.truth, scene.truth),
                 (plain.dem, scene.dem)):
        np.testing.assert_array_equal(_read(a), _read(b))
    assert plain.pre_pan is None and plain.pre_ms is None
