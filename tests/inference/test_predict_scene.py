"""Whole-scene prediction through files: stand-in models, nodata, georeferencing, polygons."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from torch import nn

from landslip.encoding import (
    IGNORE,
    STRUCTURE_8,
    apply_threshold,
    decode_probability,
    encode_probability,
)
from landslip.errors import BandError, InputError
from landslip.grid import Grid
from landslip.inference.predict import MapWriter, PredictOptions, match_bands, predict_image
from landslip.inference.sliding import RowBand, blend_in_memory, make_plan
from landslip.inference.stream import InputSpec, predict_window
from landslip.inference.vectorize import polygonize_mask
from landslip.io.raster import open_raster, raster_info, read_raster, write_raster
from landslip.models.engine import TorchEngine
from landslip.spectral.bands import resolve_band_set

NODATA = -9999.0
BANDS = ["blue", "green", "red", "nir"]


class Band0Logit(nn.Module):
    """Stand-in model: the logit of a pixel is its first (normalised) input band."""

    in_channels = 4
    required_multiple = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 1.0


class Shifted(nn.Module):
    """Stand-in model that is wrong on purpose: output shifted by one pixel."""

    in_channels = 4
    required_multiple = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x[:, :1], 1, dims=3)


def _grid(h: int, w: int, epsg: int = 32654) -> Grid:
    return Grid.from_bounds(CRS.from_epsg(epsg), 500000.0, 4740000.0, 1.5, h, w)


def _scene(path: Path, h: int, w: int, seed: int = 0, descriptions: list[str] | None = None,
           nodata_box: tuple[slice, slice] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(0.0, 3.0, (4, h, w)).astype(np.float32)
    if nodata_box is not None:
        img[(2, *nodata_box)] = NODATA
    write_raster(path, img, _grid(h, w), nodata=NODATA,
                 descriptions=BANDS if descriptions is None else descriptions)
    return img


def _spec(nodata: float | None = NODATA) -> InputSpec:
    return InputSpec(resolve_band_set("bgrn"), (1, 2, 3, 4), (0.0,) * 4, (1.0,) * 4, nodata)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -50, 50)))).astype(np.float32)


@pytest.mark.parametrize(("h", "w", "window", "overlap"),
                         [(45, 170, 1024, 64), (301, 257, 128, 64), (200, 333, 96, 32)])
def test_stand_in_output_reproduced_through_files(
    tmp_path: Path, h: int, w: int, window: int, overlap: int
) -> None:
    img = _scene(tmp_path / "img.tif", h, w)
    r = predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=0.5, window=window, overlap=overlap,
                                     probability_dtype="float32", polygons=False))
    prob, grid = read_raster(r.probability)
    assert grid.aligned_with(_grid(h, w))
    np.testing.assert_allclose(prob[0], _sigmoid(img[0]), rtol=0, atol=1e-6)
    mask, _ = read_raster(r.mask)
    np.testing.assert_array_equal(mask[0], (_sigmoid(img[0]) >= 0.5).astype(np.uint8))
    with pytest.raises(AssertionError):  # the test would see a one-pixel shift
        r2 = predict_image(Shifted(), _spec(), tmp_path / "img.tif", tmp_path / "o2",
                           PredictOptions(threshold=0.5, window=window, overlap=overlap,
                                          probability_dtype="float32", polygons=False))
        np.testing.assert_allclose(read_raster(r2.probability)[0][0], _sigmoid(img[0]),
                                   rtol=0, atol=1e-3)


def test_uint8_probability_and_tta(tmp_path: Path) -> None:
    img = _scene(tmp_path / "img.tif", 150, 230)
    r = predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=0.5, window=64, overlap=32, tta=True,
                                     polygons=False))
    prob, _ = read_raster(r.probability)
    assert prob.dtype == np.uint8 and prob.max() <= 254
    expected = np.rint(_sigmoid(img[0]).astype(np.float64) * 254)
    assert np.abs(prob[0].astype(np.float64) - expected).max() <= 1
    with rasterio.open(r.probability) as ds:
        assert ds.nodata == 255 and ds.profile["compress"] == "deflate"
        assert float(ds.tags()["PROBABILITY_SCALE"]) == pytest.approx(1 / 254)


def test_streamed_files_match_in_memory_blend(tmp_path: Path) -> None:
    """A real (random) U-Net gives the same map streamed to disk as blended in memory."""
    from landslip.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet", 4, width=4, depth=2).eval()
    _scene(tmp_path / "img.tif", 140, 200, nodata_box=(slice(10, 30), slice(0, 200)))
    plan = make_plan(140, 200, 64, 32, multiple=4)
    with open_raster(tmp_path / "img.tif") as ds:
        preds = [(win, *predict_window(ds, win, _spec(), TorchEngine(model)))
                 for win in plan.windows()]
    ref, valid = blend_in_memory(plan, iter(preds))
    r = predict_image(model, _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=0.5, window=64, overlap=32, batch_size=3,
                                     probability_dtype="float32", polygons=False))
    prob, _ = read_raster(r.probability)
    np.testing.assert_array_equal(np.isnan(prob[0]), ~valid)
    np.testing.assert_allclose(prob[0][valid], ref[valid], rtol=0, atol=1e-6)


def test_nodata_is_nodata_in_every_output(tmp_path: Path) -> None:
    box = (slice(40, 90), slice(10, 120))
    img = _scene(tmp_path / "img.tif", 128, 160, nodata_box=box)
    img[0][box] = 10.0  # would be a sure landslide if it were not nodata
    write_raster(tmp_path / "img.tif", img, _grid(128, 160), nodata=NODATA, descriptions=BANDS)
    r = predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=0.5, window=64, overlap=32))
    prob, _ = read_raster(r.probability)
    mask, _ = read_raster(r.mask)
    assert (prob[0][box] == 255).all() and (mask[0][box] == 255).all()
    outside = np.ones((128, 160), bool)
    outside[box] = False
    assert (prob[0][outside] != 255).all() and set(np.unique(mask[0][outside])) <= {0, 1}
    assert r.valid_pixels == outside.sum()
    import geopandas as gpd
    from shapely.geometry import box as shp_box

    polys = gpd.read_file(r.polygons)
    hole = shp_box(500000 + 10 * 1.5, 4740000 - 90 * 1.5, 500000 + 120 * 1.5, 4740000 - 40 * 1.5)
    assert polys.geometry.intersection(hole).area.max() == pytest.approx(0.0)


def _snake_mask(h: int, w: int) -> np.ndarray:
    """Shapes that cross many row bands and windows: a comb, a ring with a hole, a spiral."""
    m = np.zeros((h, w), np.uint8)
    m[5:150, 5:9] = 1  # comb: one spine ...
    for r in range(5, 150, 12):
        m[r:r + 3, 5:60] = 1  # ... with many teeth
    m[20:120, 80:140] = 1  # a ring
    m[40:100, 95:125] = 0
    m[130:190, 160:166] = 1  # a U joined only at the bottom
    m[130:190, 180:186] = 1
    m[186:190, 160:186] = 1
    m[0:3, 190:199] = 1  # a piece on the first rows
    m[h - 2:h, 0:30] = 1  # and on the last rows
    m[60, 170] = 1  # a single pixel
    m[3:7, 150:154] = 255  # nodata is no landslide
    return m


@pytest.mark.parametrize("band_rows", [7, 16, 64, 1024])
def test_polygons_crossing_band_borders_are_whole(tmp_path: Path, band_rows: int) -> None:
    from scipy import ndimage

    m = _snake_mask(200, 200)
    write_raster(tmp_path / "mask.tif", m, _grid(200, 200), nodata=255)
    prob = np.where(m == 1, 200, 0).astype(np.uint8)
    write_raster(tmp_path / "prob.tif", prob, _grid(200, 200), nodata=255)
    polys = polygonize_mask(tmp_path / "mask.tif", tmp_path / "prob.tif", band_rows=band_rows)
    labels, n = ndimage.label(m == 1, structure=STRUCTURE_8)
    frame = polys.frame
    assert len(frame) == n == 6
    assert (frame.geom_type == "Polygon").all() and frame.is_valid.all()
    assert sorted(frame["pixels"]) == sorted(np.bincount(labels.ravel())[1:].tolist())
    np.testing.assert_allclose(frame.area, frame["pixels"] * 2.25)
    np.testing.assert_allclose(frame["area_m2"], frame["pixels"] * 2.25)
    np.testing.assert_allclose(frame["mean_probability"], 200 / 254)
    ring = frame.loc[(frame["pixels"] == 100 * 60 - 60 * 30).idxmax()]
    assert len(ring.geometry.interiors) == 1
    assert list(frame["id"]) == list(range(1, n + 1))
    small = polygonize_mask(tmp_path / "mask.tif", None, band_rows=band_rows, min_area=3.0)
    assert len(small.frame) == n - 1 and small.dropped == 1


def test_polygons_crossing_window_borders_are_whole(tmp_path: Path) -> None:
    h, w = 250, 260
    img = np.full((4, h, w), -5.0, np.float32)
    img[0][_snake_mask(h, w)[:h, :w] == 1] = 5.0
    write_raster(tmp_path / "img.tif", img, _grid(h, w), nodata=NODATA, descriptions=BANDS)
    r = predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=0.5, window=64, overlap=32, geojson=True))
    assert r.plan.n_windows > 20
    import geopandas as gpd

    polys = gpd.read_file(r.polygons)
    assert len(polys) == r.n_polygons == 6
    assert polys.crs.to_epsg() == 32654
    gj = gpd.read_file(r.geojson)
    assert gj.crs.to_epsg() == 4326 and len(gj) == 6
    np.testing.assert_allclose(gj.to_crs(32654).area.sort_values().to_numpy(),
                               polys.area.sort_values().to_numpy(), rtol=1e-6)
    report = json.loads(r.report.read_text())
    assert report["polygons"] == 6 and report["windows"] == r.plan.n_windows


def test_band_matching_by_name_and_refusals(tmp_path: Path) -> None:
    _scene(tmp_path / "img.tif", 40, 40, descriptions=["nir", "red", "green", "blue"])
    info = raster_info(tmp_path / "img.tif")
    bg_ndvi = resolve_band_set("bg-ndvi")
    expected = tuple(["nir", "red", "green", "blue"].index(b) + 1 for b in bg_ndvi.required)
    assert match_bands(info, bg_ndvi) == expected
    assert match_bands(info, resolve_band_set("bgr")) == (4, 3, 2)
    with pytest.raises(BandError, match=r"needs band\(s\) blue, green, red, nir.*missing"):
        match_bands(info, resolve_band_set("bgrn"), ["x", "green", "red", "nir"])
    with pytest.raises(BandError, match="gives 2 name"):
        match_bands(info, resolve_band_set("bgr"), ["blue", "green"])
    write_raster(tmp_path / "anon.tif", np.zeros((3, 8, 8), np.uint16), _grid(8, 8))
    with pytest.raises(BandError, match=r"no names.*--band-names"):
        match_bands(raster_info(tmp_path / "anon.tif"), resolve_band_set("bgr"))
    assert match_bands(raster_info(tmp_path / "anon.tif"), resolve_band_set("bgr"),
                       ["red", "green", "blue"]) == (3, 2, 1)


def test_bad_options_write_nothing(tmp_path: Path) -> None:
    _scene(tmp_path / "img.tif", 40, 40)
    for kwargs in ({"overlap": 1024}, {"batch_size": 0}):
        with pytest.raises(InputError):
            predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                          PredictOptions(**kwargs))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="threshold"):
        predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=1.5))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.skipif(shutil.which("gdalinfo") is None or shutil.which("ogrinfo") is None,
                    reason="GDAL command-line tools absent (apt-get install gdal-bin)")
def test_gdal_tools_read_outputs(tmp_path: Path) -> None:
    h, w = 250, 260
    img = np.full((4, h, w), -5.0, np.float32)
    img[0][_snake_mask(h, w) == 1] = 5.0
    write_raster(tmp_path / "img.tif", img, _grid(h, w), nodata=NODATA, descriptions=BANDS)
    r = predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=0.5, window=128, overlap=64))
    for path in (r.probability, r.mask):
        info = json.loads(subprocess.run(["gdalinfo", "-json", str(path)], check=True,
                                         capture_output=True, text=True).stdout)
        assert info["size"] == [w, h]
        assert info["geoTransform"] == [500000.0, 1.5, 0.0, 4740000.0, 0.0, -1.5]
        assert 'ID["EPSG",32654]' in info["coordinateSystem"]["wkt"]
        assert info["bands"][0]["noDataValue"] == 255
    out = subprocess.run(["ogrinfo", "-so", "-al", str(r.polygons)], check=True,
                         capture_output=True, text=True).stdout
    assert "Feature Count: 6" in out
    assert "UTM zone 54N" in out and "area_m2: Real" in out and "mean_probability" in out


# -- one decision rule and one encoding in predict and evaluate ---------------------------------

def _threshold_probabilities() -> np.ndarray:
    """float32 probabilities around 0.41 and 0.45: exactly float32(t), its neighbours, others."""
    vals = [0.0, 1.0, 0.2, 0.9, 0.5]
    for t in (0.41, 0.45):
        f = np.float32(t)
        vals += [f, np.nextafter(f, np.float32(0)), np.nextafter(f, np.float32(1)), t]
    rng = np.random.default_rng(3)
    p = np.array(vals + list(rng.random(64 - len(vals))), dtype=np.float32)
    return p.reshape(4, 16)


@pytest.mark.parametrize("threshold", [0.41, 0.45])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_predict_writer_and_evaluate_give_the_same_mask_and_codes(
    tmp_path: Path, threshold: float, dtype: str
) -> None:
    """The same float32 probabilities make the same mask in landslides.tif (predict) and
    masks.npy (evaluate), values exactly at the threshold included, and the same uint8 codes
    in probability.tif and probabilities.npy."""
    from landslip.evaluation.evaluate import encode_predictions
    from landslip.grid import Window

    prob = _threshold_probabilities()
    valid = np.ones(prob.shape, dtype=bool)
    valid[3, 12:] = False  # nodata in predict, label 255 (not evaluated) in evaluate
    grid = _grid(*prob.shape)
    with MapWriter(tmp_path / "p.tif", tmp_path / "m.tif", grid, threshold,
                   dtype) as writer:  # type: ignore[arg-type]
        writer.write(RowBand(Window(0, 0, *prob.shape), np.where(valid, prob, 0), valid))
    tif_mask = read_raster(tmp_path / "m.tif")[0][0]
    tif_prob = read_raster(tmp_path / "p.tif")[0][0]
    truth = np.where(valid, 0, IGNORE).astype(np.uint8)
    codes, masks = encode_predictions(prob, truth, threshold)
    np.testing.assert_array_equal(tif_mask, masks)
    # The rule is p >= threshold in float64: float32(0.41) < 0.41 is background.
    expected = np.where(valid, apply_threshold(prob, threshold), IGNORE).astype(np.uint8)
    np.testing.assert_array_equal(masks, expected)
    assert masks[prob == np.float32(threshold)].tolist() == [0] * int(
        np.count_nonzero(prob == np.float32(threshold)))
    if dtype == "uint8":
        np.testing.assert_array_equal(tif_prob, codes)
        np.testing.assert_array_equal(codes, encode_probability(prob, valid))
        assert codes[~valid].tolist() == [255] * 4 and codes.max() == 255
        assert int(codes[prob == 1.0][0]) == 254
    else:
        np.testing.assert_array_equal(tif_prob[valid], prob[valid])
        np.testing.assert_array_equal(codes, encode_probability(tif_prob, valid))


@pytest.mark.parametrize("threshold", [0.41, 0.45])
def test_predicted_mask_follows_the_float64_rule_at_the_threshold(
    tmp_path: Path, threshold: float
) -> None:
    """Pixels whose float32 probability is exactly float32(threshold) (below the threshold the
    user gave) are background in landslides.tif, as in evaluate's report."""
    f = np.float32(threshold)
    x0 = np.float32(np.log(threshold / (1 - threshold)))
    cand = x0 + np.arange(-300, 300, dtype=np.float32) * np.spacing(x0)
    exact = cand[torch.sigmoid(torch.from_numpy(cand)).numpy() == f]
    assert exact.size
    img = np.zeros((4, 32, 64), np.float32)
    img[0] = np.resize(np.concatenate([exact, [x0 - 1, x0 + 1]]), (32, 64))
    write_raster(tmp_path / "img.tif", img, _grid(32, 64), nodata=NODATA, descriptions=BANDS)
    r = predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=threshold, window=64, overlap=0,
                                     probability_dtype="float32", polygons=False))
    prob = read_raster(r.probability)[0][0]
    mask = read_raster(r.mask)[0][0]
    assert np.count_nonzero(prob == f) > 100  # the case at stake is present
    np.testing.assert_array_equal(mask, apply_threshold(prob, threshold).astype(np.uint8))
    assert (mask[prob == f] == 0).all() and (mask[prob > threshold] == 1).all()


# -- one connectivity in evaluate and predict ----------------------------------------------------

def _corner_cases() -> np.ndarray:
    m = np.zeros((24, 24), np.uint8)
    m[2:5, 2:5] = 1  # two blobs touching at a corner ...
    m[5:8, 5:8] = 1
    m[6:8, 14:16] = 1  # ... a blob crossing the row-8 strip border diagonally only ...
    m[8:10, 16:18] = 1
    m[15, 3] = m[16, 4] = m[17, 3] = 1  # ... a zigzag of corner-touching pixels
    m[12:14, 20:22] = 1  # ... and a separate blob
    m[20:22, 10:12] = 1
    return m


@pytest.mark.parametrize("band_rows", [8, 5, 256])
def test_polygon_count_equals_evaluation_object_count(tmp_path: Path, band_rows: int) -> None:
    from landslip.evaluation.objects import ObjectCounter, label_regions

    m = _corner_cases()
    write_raster(tmp_path / "mask.tif", m, _grid(*m.shape), nodata=255)
    polys = polygonize_mask(tmp_path / "mask.tif", None, band_rows=band_rows)
    counter = ObjectCounter()
    counter.update(m, np.zeros_like(m))  # every predicted region is a false alarm
    objects = counter.result()
    assert objects.n_pred == label_regions(m)[1] == len(polys.frame) == 5
    frame = polys.frame
    assert frame.is_valid.all()
    assert sorted(frame["pixels"]) == sorted(int(a) for a in objects.pred_areas)
    np.testing.assert_allclose(frame.area, frame["pixels"] * 2.25)
    # The corner-joined landslides are one feature each, made of several parts.
    assert sorted(frame.geom_type) == ["MultiPolygon"] * 3 + ["Polygon"] * 2


def _same_polygons(a: Any, b: Any) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in ("id", "pixels", "area_m2", "mean_probability"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy())
    assert all(g.equals(h) for g, h in zip(a.geometry, b.geometry, strict=True))


def test_tracing_while_writing_equals_tracing_the_file(tmp_path: Path) -> None:
    """MaskTracer fed rows in bands of any height (not aligned to its 256-row bands) gives
    the polygons polygonize_mask reads back from the finished files; out of order: refused."""
    from landslip.inference.vectorize import MaskTracer

    rng = np.random.default_rng(3)
    m = np.kron(rng.random((70, 30)) < 0.3, np.ones((9, 9), dtype=np.uint8))[:600, :250]
    m = m.astype(np.uint8)
    prob = np.where(m == 1, rng.integers(128, 255, m.shape), 10).astype(np.uint8)
    write_raster(tmp_path / "mask.tif", m, _grid(*m.shape), nodata=255)
    write_raster(tmp_path / "prob.tif", prob, _grid(*m.shape), nodata=255)
    tracer = MaskTracer(_grid(*m.shape))
    r0 = 0
    for h in (100, 300, 37, 163):
        tracer.add(r0, m[r0:r0 + h] == 1, decode_probability(prob[r0:r0 + h]))
        r0 += h
    traced = tracer.polygons().frame
    assert len(traced) > 50
    _same_polygons(traced, polygonize_mask(tmp_path / "mask.tif", tmp_path / "prob.tif").frame)
    with pytest.raises(ValueError, match="rows must come in order"):
        tracer.add(0, m[:10] == 1, None)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_predict_traces_the_polygons_of_its_own_mask(tmp_path: Path, dtype: str) -> None:
    """The polygons predict traces while writing equal those traced from its finished files."""
    h, w = 300, 260
    img = np.full((4, h, w), -5.0, np.float32)
    img[0][_snake_mask(h, w)[:h, :w] == 1] = 5.0
    img[0, 40:200:7, 10:250] = 0.3  # probabilities between 0.5 and 1 on some rows
    write_raster(tmp_path / "img.tif", img, _grid(h, w), nodata=NODATA, descriptions=BANDS)
    r = predict_image(Band0Logit(), _spec(), tmp_path / "img.tif", tmp_path / "out",
                      PredictOptions(threshold=0.5, window=64, overlap=32,
                                     probability_dtype=dtype))  # type: ignore[arg-type]
    import geopandas as gpd

    written = gpd.read_file(r.polygons)
    again = polygonize_mask(r.mask, r.probability).frame
    assert len(written) == r.n_polygons == len(again) >= 4
    _same_polygons(written.drop(columns=[c for c in written.columns if c not in again.columns]),
                   again)


def test_map_writer_leaves_neither_file_when_one_copy_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two COG copies run side by side; when one fails the other file is removed too."""
    import landslip.io.cog as cog
    from landslip.errors import RasterIOError
    from landslip.grid import Window

    real = cog.write_cog

    def failing(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if "mask" in Path(dst).name:
            raise RasterIOError(f"cannot write the Cloud-Optimized GeoTIFF {dst}: disk full")
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(cog, "write_cog", failing)
    prob = np.full((40, 50), 0.7, np.float32)
    with pytest.raises(RasterIOError, match="disk full"), MapWriter(
            tmp_path / "prob.tif", tmp_path / "mask.tif", _grid(40, 50), 0.5) as writer:
        writer.write(RowBand(Window(0, 0, 40, 50), prob, np.ones(prob.shape, bool)))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
