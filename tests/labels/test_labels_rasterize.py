"""Rasterizing landslide polygons onto an image grid: reprojection, nodata, refusals."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from rasterio.crs import CRS

from landslip.cli.app import main
from landslip.encoding import BACKGROUND, IGNORE, LABELS_TAG, LANDSLIDE
from landslip.errors import InputError, LabelError
from landslip.grid import Grid
from landslip.io.raster import read_raster, write_raster
from landslip.labels.rasterize import rasterize_labels

UTM54 = CRS.from_epsg(32654)


def _image(path: Path, h: int = 120, w: int = 100, nodata_cols: int = 10) -> Grid:
    """A 3-band uint16 image on EPSG:32654, 3 m pixels, nodata 0 in its last columns."""
    grid = Grid.from_bounds(UTM54, left=500000.0, top=4750000.0, res=3.0, height=h, width=w)
    data = np.full((3, h, w), 500, dtype=np.uint16)
    if nodata_cols:
        data[1, :, -nodata_cols:] = 0  # one band nodata is enough to make a pixel ignore
    write_raster(path, data, grid, nodata=0)
    return grid


def _truth(grid: Grid) -> np.ndarray:
    yy, xx = np.mgrid[0:grid.height, 0:grid.width]
    t = ((yy - 40) ** 2 + (xx - 30) ** 2 <= 15**2) | (
        (np.abs(yy - 90) < 12) & (np.abs(xx - 60 + (yy - 90) // 2) < 20))
    return t.astype(np.uint8)


def _polygons_4326(truth: np.ndarray, grid: Grid, path: Path) -> Path:
    """Polygonize a truth raster (GSI-style outlines) and save them as lon/lat GeoJSON."""
    import geopandas as gpd
    from rasterio.features import shapes
    from shapely.geometry import shape

    geoms = [shape(g) for g, v in shapes(truth, mask=truth == 1, transform=grid.transform)
             if v == 1]
    frame = gpd.GeoDataFrame({"kind": ["slide"] * len(geoms)}, geometry=geoms, crs=UTM54)
    frame.to_crs("EPSG:4326").to_file(path, driver="GeoJSON")
    return path


def _geojson(path: Path, features: list[dict], crs: bool = True) -> Path:
    doc: dict = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(doc))
    return path


def _poly(coords: list[tuple[float, float]], **props: object) -> dict:
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [list(map(list, coords))]}}


def _box_ll(grid: Grid, x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    """Lon/lat ring of a box given in the image CRS."""
    from pyproj import Transformer

    t = Transformer.from_crs(UTM54, "EPSG:4326", always_xy=True)
    pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    return [t.transform(x, y) for x, y in pts]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_lonlat_polygons_on_utm_grid_match_truth(tmp_path: Path) -> None:
    img = tmp_path / "img.tif"
    grid = _image(img, nodata_cols=0)
    truth = _truth(grid)
    vec = _polygons_4326(truth, grid, tmp_path / "gsi.geojson")
    res = rasterize_labels(vec, img, tmp_path / "lab.tif")
    lab, lgrid = read_raster(tmp_path / "lab.tif")
    assert lab.dtype == np.uint8 and lab.shape == (1, *grid.shape)
    assert lgrid.aligned_with(grid)
    assert _iou(lab[0] == 1, truth == 1) >= 0.98
    assert res.overlap_fraction == pytest.approx(1.0, abs=1e-6)
    assert res.landslide_pixels == int((lab == 1).sum())


def test_nodata_becomes_ignore_and_windows_stitch(tmp_path: Path) -> None:
    img = tmp_path / "img.tif"
    grid = _image(img, nodata_cols=10)
    truth = _truth(grid)
    vec = _polygons_4326(truth, grid, tmp_path / "gsi.geojson")
    rasterize_labels(vec, img, tmp_path / "whole.tif")
    res = rasterize_labels(vec, img, tmp_path / "blocks.tif", block=32)  # many partial windows
    whole, _ = read_raster(tmp_path / "whole.tif")
    blocks, _ = read_raster(tmp_path / "blocks.tif")
    np.testing.assert_array_equal(whole, blocks)
    assert (whole[0, :, -10:] == IGNORE).all()
    assert set(np.unique(whole[0, :, :-10]).tolist()) == {BACKGROUND, LANDSLIDE}
    # the counts add up over the clipped windows
    assert res.background_pixels == int((whole == BACKGROUND).sum())
    assert res.landslide_pixels == int((whole == LANDSLIDE).sum())
    assert res.ignore_pixels == int((whole == IGNORE).sum()) == 10 * grid.height
    import rasterio

    with rasterio.open(tmp_path / "whole.tif") as ds:
        assert ds.nodata == IGNORE and ds.crs == UTM54
        assert ds.tags()["LANDSLIP_LABELS"] == LABELS_TAG


def test_all_touched_burns_more(tmp_path: Path) -> None:
    img = tmp_path / "img.tif"
    grid = _image(img, nodata_cols=0)
    x0, y0 = 500000.0 + 31.5, 4750000.0 - 200.5
    vec = _geojson(tmp_path / "v.geojson", [_poly(_box_ll(grid, x0, y0, x0 + 40, y0 + 40))])
    a = rasterize_labels(vec, img, tmp_path / "a.tif")
    b = rasterize_labels(vec, img, tmp_path / "b.tif", all_touched=True)
    assert b.landslide_pixels > a.landslide_pixels > 0


def test_where_filter_and_invalid_polygon_repaired(tmp_path: Path) -> None:
    img = tmp_path / "img.tif"
    grid = _image(img, nodata_cols=0)
    x, y = 500030.0, 4749700.0
    bow = _box_ll(grid, x, y, x + 60, y + 60)
    bowtie = [bow[0], bow[2], bow[1], bow[3], bow[0]]  # self-intersecting
    other = _box_ll(grid, x + 120, y + 120, x + 180, y + 180)
    vec = _geojson(tmp_path / "v.geojson", [_poly(bowtie, kind="slide"),
                                             _poly(other, kind="flow")])
    r = rasterize_labels(vec, img, tmp_path / "a.tif")
    assert r.n_repaired == 1 and r.n_features == 2
    f = rasterize_labels(vec, img, tmp_path / "b.tif", where="kind = 'flow'")
    assert f.n_features == 1
    assert 350 < f.landslide_pixels < 450  # 60 m x 60 m box = 400 px of 3 m
    with pytest.raises(InputError, match="attribute filter"):
        rasterize_labels(vec, img, tmp_path / "c.tif", where="nosuchfield = 1")


def test_refuses_vector_without_crs_unless_given(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    img = tmp_path / "img.tif"
    _image(img)
    shp = tmp_path / "labels.shp"
    gpd.GeoDataFrame(geometry=[box(500030, 4749700, 500090, 4749760)], crs=UTM54).to_file(shp)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(LabelError, match=r"no coordinate reference system.*--labels-crs"):
        rasterize_labels(shp, img, tmp_path / "a.tif")
    r = rasterize_labels(shp, img, tmp_path / "a.tif", labels_crs="EPSG:32654")
    assert r.landslide_pixels == 400
    assert not (tmp_path / "b.tif").exists()


def test_refuses_labels_off_the_image_with_both_extents(tmp_path: Path) -> None:
    img = tmp_path / "img.tif"
    grid = _image(img)
    far = _box_ll(grid, 510000, 4760000, 510100, 4760100)
    vec = _geojson(tmp_path / "v.geojson", [_poly(far)])
    with pytest.raises(LabelError, match="no label polygon") as err:
        rasterize_labels(vec, img, tmp_path / "a.tif")
    msg = str(err.value)
    assert "EPSG:32654" in msg and "510000" in msg and "500000" in msg
    assert not (tmp_path / "a.tif").exists()


def test_refuses_empty_and_non_polygon(tmp_path: Path) -> None:
    img = tmp_path / "img.tif"
    _image(img)
    empty = tmp_path / "empty.geojson"
    empty.write_text("")
    with pytest.raises(LabelError, match="empty file"):
        rasterize_labels(empty, img, tmp_path / "a.tif")
    nofeat = _geojson(tmp_path / "nofeat.geojson", [])
    with pytest.raises(LabelError, match="no features"):
        rasterize_labels(nofeat, img, tmp_path / "a.tif")
    pts = _geojson(tmp_path / "pts.geojson", [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Point", "coordinates": [141.0, 42.9]}}])
    with pytest.raises(LabelError, match="non-polygon geometries \\(1 Point\\)"):
        rasterize_labels(pts, img, tmp_path / "a.tif")


def test_warns_on_partial_overlap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    img = tmp_path / "img.tif"
    grid = _image(img, nodata_cols=0)
    left = grid.bounds[0]
    half = _box_ll(grid, left - 30, 4749700, left + 30, 4749760)  # half off the west edge
    vec = _geojson(tmp_path / "v.geojson", [_poly(half)])
    with caplog.at_level(logging.WARNING, logger="landslip"):
        r = rasterize_labels(vec, img, tmp_path / "a.tif")
    assert r.overlap_fraction == pytest.approx(0.5, abs=0.01)
    assert "50.0%" in caplog.text


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "img.tif"
    grid = _image(img)
    vec = _polygons_4326(_truth(grid), grid, tmp_path / "gsi.geojson")
    out = tmp_path / "lab.tif"
    assert main(["-q", "rasterize", str(vec), "--like", str(img), "-o", str(out)]) == 0
    assert "landslide px" in capsys.readouterr().out and out.exists()
    pts = _geojson(tmp_path / "pts.geojson", [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Point", "coordinates": [141.0, 42.9]}}])
    assert main(["rasterize", str(pts), "--like", str(img), "-o", str(out)]) == 2
    assert "Error:" in capsys.readouterr().err


def test_synthetic_scene_gsi_polygons(tmp_path: Path) -> None:
    """The issue's check: GSI-style lon/lat polygons of a synthetic scene match its truth."""
    scene = pytest.importorskip("landslip.synthetic.scene")
    r = scene.make_scene(tmp_path / "scene", size=256, seed=3, preview=False)
    assert r.landslide_count > 0
    res = rasterize_labels(r.landslides, r.truth, tmp_path / "lab.tif")
    lab, lgrid = read_raster(tmp_path / "lab.tif")
    truth, tgrid = read_raster(r.truth)
    assert lgrid.aligned_with(tgrid) and tgrid.crs == UTM54
    import geopandas as gpd

    assert gpd.read_file(r.landslides).crs.to_epsg() == 4326
    assert _iou(lab[0] == 1, truth[0] == 1) >= 0.98
    assert res.overlap_fraction > 0.99


def test_image_mask_without_nodata_value_becomes_ignore(tmp_path: Path) -> None:
    import rasterio

    grid = Grid.from_bounds(UTM54, left=500000.0, top=4750000.0, res=3.0, height=40, width=40)
    img = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        img, "w", driver="GTiff", height=40, width=40, count=2, dtype="uint16",
        crs=UTM54, transform=grid.transform) as ds:
        ds.write(np.full((2, 40, 40), 300, np.uint16))
        mask = np.full((40, 40), 255, np.uint8)
        mask[30:, :] = 0
        ds.write_mask(mask)
    vec = _geojson(tmp_path / "v.geojson", [_poly(_box_ll(grid, 500000, 4749880, 500120,
                                                             4750000))])
    r = rasterize_labels(vec, img, tmp_path / "lab.tif")
    lab, _ = read_raster(tmp_path / "lab.tif")
    assert (lab[0, 30:] == 255).all() and r.ignore_pixels == 400
    assert (lab[0, :30] == 1).all()


def test_block_cache_is_set_in_mib_not_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    # rasterio.Env(GDAL_CACHEMAX=256) sets a 256-byte cache: every partial block was flushed
    import rasterio

    from landslip.io.raster import RasterWriter

    seen: list[int] = []
    write = RasterWriter.write

    def spy(self: RasterWriter, data: np.ndarray, window: object = None) -> None:
        seen.append(int(rasterio.env.getenv().get("GDAL_CACHEMAX", 0)))
        write(self, data, window)  # type: ignore[arg-type]

    img = tmp_path / "img.tif"
    grid = _image(img, nodata_cols=0)
    vec = _polygons_4326(_truth(grid), grid, tmp_path / "gsi.geojson")
    monkeypatch.setattr(RasterWriter, "write", spy)
    rasterize_labels(vec, img, tmp_path / "lab.tif", block=64)
    assert seen and all(v == 256 << 20 for v in seen)


def test_label_raster_is_a_cog_with_the_label_colours(tmp_path: Path) -> None:
    import rasterio
    from rasterio.enums import ColorInterp

    from landslip.io.cog import LANDSLIDE_RGB, check_cog

    grid = _image(tmp_path / "img.tif")
    vec = _polygons_4326(_truth(grid), grid, tmp_path / "truth.geojson")
    rasterize_labels(vec, tmp_path / "img.tif", tmp_path / "lab.tif")
    assert check_cog(tmp_path / "lab.tif").valid
    with rasterio.open(tmp_path / "lab.tif") as ds:
        assert ds.colorinterp == (ColorInterp.palette,)
        assert ds.colormap(1)[1][:3] == LANDSLIDE_RGB
