"""The synthetic scene: georeferencing, truth consistency, determinism, content, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from landslip.cli.app import main
from landslip.errors import InputError
from landslip.io.raster import raster_info, read_raster
from landslip.synthetic.scene import SceneResult, make_scene

SIZE = 256


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneResult:
    return make_scene(tmp_path_factory.mktemp("scene") / "a", size=SIZE, seed=1, dem=True)


def _polygons_utm(path: Path) -> list[object]:
    import geopandas as gpd

    gdf = gpd.read_file(path, engine="pyogrio")
    assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
    return list(gdf.to_crs("EPSG:32654").geometry)


def test_files_and_georeferencing(scene: SceneResult) -> None:
    pan = raster_info(scene.pan)
    ms = raster_info(scene.ms)
    truth = raster_info(scene.truth)
    assert scene.dem is not None
    dem = raster_info(scene.dem)
    for info in (pan, ms, truth, dem):
        assert info.grid.crs is not None and info.grid.crs.to_epsg() == 32654
    assert pan.grid.res == (1.5, 1.5) and ms.grid.res == (6.0, 6.0)
    assert pan.grid.shape == (SIZE, SIZE) and ms.grid.shape == (SIZE // 4, SIZE // 4)
    assert pan.grid.bounds == ms.grid.bounds == truth.grid.bounds == dem.grid.bounds
    assert truth.grid.aligned_with(pan.grid) and dem.grid.aligned_with(pan.grid)
    assert pan.count == 1 and pan.dtype == "uint16" and pan.descriptions == ("pan",)
    assert ms.count == 4 and ms.dtype == "uint16"
    assert ms.descriptions == ("blue", "green", "red", "nir")
    assert truth.dtype == "uint8" and dem.dtype == "float32"
    # near Atsuma: the scene centre lies within 2 km of 42.7 N, 141.9 E
    from pyproj import Transformer

    left, bottom, right, top = pan.grid.bounds
    lon, lat = Transformer.from_crs("EPSG:32654", "EPSG:4326", always_xy=True).transform(
        (left + right) / 2, (bottom + top) / 2)
    assert abs(lon - 141.9) < 0.02 and abs(lat - 42.7) < 0.02
    # 12-bit digital numbers that are not all the same
    for path in (scene.pan, scene.ms):
        arr, _ = read_raster(path)
        assert arr.max() <= 4095 and arr.std() > 10
    heights, _ = read_raster(scene.dem)
    assert 0 < heights.min() < heights.max() < 1000
    meta = json.loads(scene.scene_json.read_text())
    assert meta["seed"] == 1 and meta["landslides"]["count"] == scene.landslide_count
    assert scene.preview is not None and scene.preview.stat().st_size > 10_000


def _image_box(rgb: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the image drawn in a figure panel (mostly non-white lines)."""
    drawn = (rgb < 0.95).any(axis=-1)
    rows = np.flatnonzero(drawn.mean(axis=1) > 0.5)
    cols = np.flatnonzero(drawn.mean(axis=0) > 0.5)
    assert rows.size and cols.size, "a panel shows no image"
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def test_preview_shows_true_and_false_colour_with_outlines(scene: SceneResult) -> None:
    from PIL import Image

    assert scene.preview is not None
    png = np.asarray(Image.open(scene.preview).convert("RGB"), dtype=np.float64) / 255
    assert png.shape == (740, 1400, 3)  # 14 x 7.4 inches at 100 dpi
    assert png.std() > 0.1  # not blank
    means = []
    for half in (png[:, :700], png[:, 700:]):  # true colour left, false colour right
        rows, cols = _image_box(half)
        panel = half[rows, cols]
        # a square scene shown at least 400 pixels across, with texture in every channel
        assert panel.shape[0] >= 400 and abs(panel.shape[0] - panel.shape[1]) <= 0.05 * 400
        assert (panel.std(axis=(0, 1)) > 0.05).all()
        yellow = (panel[..., 0] > 0.8) & (panel[..., 1] > 0.8) & (panel[..., 2] < 0.3)
        assert yellow.sum() > 100  # landslide outlines drawn
        means.append(panel.mean(axis=(0, 1)))
    # false colour puts the bright NIR of vegetation in red: the panels differ
    assert means[1][0] > means[0][0] + 0.05


def test_polygons_inside_footprint(scene: SceneResult) -> None:
    from shapely.geometry import box

    polys = _polygons_utm(scene.landslides)
    assert len(polys) == scene.landslide_count > 0
    footprint = box(*scene.pan_grid.bounds).buffer(0.01)
    assert all(footprint.contains(p) for p in polys)
    assert all(p.is_valid and p.geom_type == "Polygon" for p in polys)


def test_geojson_layer_is_named_landslides(scene: SceneResult) -> None:
    # the name was the temporary file's (".landslides.partial-<pid>"), so the bytes of the
    # same scene differed from one process to the next
    doc = json.loads(scene.landslides.read_text())
    assert doc["name"] == "landslides"
    assert len(doc["features"]) == scene.landslide_count


def test_rasters_are_written_with_a_128_mib_block_cache(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # rasterio.Env(GDAL_CACHEMAX=128) set a 128-byte cache
    import rasterio

    from landslip.io.raster import RasterWriter

    seen: list[int] = []
    write = RasterWriter.write

    def spy(self: RasterWriter, data: np.ndarray, window: object = None) -> None:
        seen.append(int(rasterio.env.getenv().get("GDAL_CACHEMAX", 0)))
        write(self, data, window)  # type: ignore[arg-type]

    monkeypatch.setattr(RasterWriter, "write", spy)
    make_scene(tmp_path / "s", size=SIZE, seed=1, preview=False)
    assert len(seen) == 3 and all(v == 128 << 20 for v in seen)


def test_truth_raster_agrees_with_polygons(scene: SceneResult) -> None:
    from rasterio.features import rasterize

    polys = _polygons_utm(scene.landslides)
    again = rasterize(((p, 1) for p in polys), out_shape=scene.pan_grid.shape,
                      transform=scene.pan_grid.transform, fill=0, dtype="uint8")
    truth, _ = read_raster(scene.truth)
    assert set(np.unique(truth)) <= {0, 1}
    inter = np.logical_and(again == 1, truth[0] == 1).sum()
    union = np.logical_or(again == 1, truth[0] == 1).sum()
    assert union > 0 and inter / union >= 0.98


def test_landslide_fraction_in_configured_range(scene: SceneResult, tmp_path: Path) -> None:
    truth, _ = read_raster(scene.truth)
    assert 0.02 <= truth.mean() <= 0.08
    assert truth.mean() == pytest.approx(scene.landslide_fraction)
    other = make_scene(tmp_path / "f", size=SIZE, seed=5, landslide_fraction=0.03,
                       fraction_range=(0.02, 0.04), preview=False)
    assert 0.02 <= other.landslide_fraction <= 0.04


def test_landslide_ndvi_clearly_below_forest(scene: SceneResult) -> None:
    assert scene.class_ndvi["landslide"] < scene.class_ndvi["forest"] - 0.3
    # and in the MS digital numbers: pure landslide 6 m pixels against pure background
    ms, _ = read_raster(scene.ms)
    truth, _ = read_raster(scene.truth)
    share = truth[0].reshape(SIZE // 4, 4, SIZE // 4, 4).mean(axis=(1, 3))
    red, nir = ms[2].astype(float), ms[3].astype(float)
    ndvi = (nir - red) / np.maximum(nir + red, 1)
    assert (share == 1).sum() > 5
    assert ndvi[share == 1].mean() < ndvi[share == 0].mean() - 0.2


def test_same_seed_same_bytes_other_seed_differs(scene: SceneResult, tmp_path: Path) -> None:
    again = make_scene(tmp_path / "b", size=SIZE, seed=1, dem=True)
    for name in ("pan.tif", "ms.tif", "truth.tif", "dem.tif", "landslides.geojson"):
        assert (scene.out_dir / name).read_bytes() == (again.out_dir / name).read_bytes(), name
    other = make_scene(tmp_path / "c", size=SIZE, seed=2, preview=False)
    a, _ = read_raster(scene.pan)
    b, _ = read_raster(other.pan)
    assert np.mean(a != b) > 0.9
    assert scene.landslides.read_bytes() != other.landslides.read_bytes()


def test_tiling_does_not_change_the_scene(scene: SceneResult, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import landslip.synthetic.scene as scene_module

    monkeypatch.setattr(scene_module, "TILE", 96)  # 96 + 96 + 64: clipped edge tiles
    tiled = make_scene(tmp_path / "t", size=SIZE, seed=1, dem=True, preview=False)
    for name in ("truth.tif", "dem.tif"):
        a, _ = read_raster(scene.out_dir / name)
        b, _ = read_raster(tiled.out_dir / name)
        np.testing.assert_array_equal(a, b)
    # pixel values differ only by the sensor noise (drawn per tile)
    a, _ = read_raster(scene.pan)
    b, _ = read_raster(tiled.pan)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 15


@pytest.mark.parametrize("size", [100, 255, 258, 0])
def test_bad_size_is_refused(size: int, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="multiple of 4"):
        make_scene(tmp_path / "x", size=size)
    assert not (tmp_path / "x").exists()


def test_cli_writes_the_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = main(["-q", "synth", "-o", str(out), "--size", "256", "--seed", "4"])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("pan.tif", "ms.tif", "truth.tif", "landslides.geojson", "preview.png",
                 "scene.json"):
        assert (out / name).is_file() and name in text
    assert "landslides covering" in text
    assert not list(out.glob(".*partial*"))


def test_cli_bad_size_exit_2_nothing_written(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad"
    rc = main(["synth", "-o", str(out), "--size", "510"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error:") and "multiple of 4" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.slow
def test_lookalikes_are_flat_and_as_dark_in_ndvi(tmp_path: Path) -> None:
    r = make_scene(tmp_path / "l", size=1024, seed=0, preview=False)
    slide_slope = r.class_slope_deg["landslide"]
    assert slide_slope > 20
    for name in ("bare_soil", "road", "gravel"):
        assert r.class_fraction[name] > 0.002, name
        assert r.class_ndvi[name] < r.class_ndvi["landslide"] + 0.1, name
        assert r.class_slope_deg[name] < slide_slope - 10, name


def test_scene_rasters_are_cogs_that_viewers_read_right(scene: SceneResult) -> None:
    """PAN, MS, DEM and truth are valid Cloud-Optimized GeoTIFFs; the MS bands say which is
    red, green and blue (nir undefined, never alpha); the truth has the label colour table."""
    import rasterio
    from rasterio.enums import ColorInterp

    from landslip.io.cog import LANDSLIDE_RGB, check_cog

    assert scene.dem is not None
    for path in (scene.pan, scene.ms, scene.dem, scene.truth):
        assert check_cog(path).valid, path
    with rasterio.open(scene.ms) as ds:
        assert ds.colorinterp == (ColorInterp.blue, ColorInterp.green, ColorInterp.red,
                                  ColorInterp.undefined)
    with rasterio.open(scene.truth) as ds:
        assert ds.colorinterp == (ColorInterp.palette,)
        assert ds.colormap(1)[1][:3] == LANDSLIDE_RGB
