"""Every raster landslip writes is a valid Cloud-Optimized GeoTIFF that viewers read right."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp

from landslip.encoding import PROBABILITY_NODATA, encode_probability
from landslip.grid import Grid, Window
from landslip.io.cog import (
    COG_BLOCK,
    CONTINUOUS,
    LABELS,
    LANDSLIDE_RGB,
    RasterStyle,
    check_cog,
    color_interpretation,
    overview_factors,
    probability_style,
)
from landslip.io.raster import RasterWriter, write_raster

BANDS = ["blue", "green", "red", "nir"]


def _grid(h: int, w: int) -> Grid:
    return Grid.from_bounds(CRS.from_epsg(32654), 547000.0, 4727000.0, 1.5, h, w)


def test_streamed_raster_becomes_a_valid_cog_with_overviews(tmp_path: Path) -> None:
    """Written window by window: tiled 256, DEFLATE, internal overviews, COG layout (validated
    by rio-cogeo), pixels unchanged, nothing left beside it."""
    g = _grid(700, 600)
    rng = np.random.default_rng(0)
    data = rng.integers(1, 4096, (4, 700, 600), dtype=np.uint16)
    target = tmp_path / "img.tif"
    with RasterWriter(target, g, 4, "uint16", 0, BANDS, {"SOURCE": "test"}) as w:
        for r in range(0, 700, 256):
            win = Window(r, 0, min(256, 700 - r), 600)
            w.write(data[(slice(None), *win.slices())], win)
    check = check_cog(target)
    assert check.valid, check.errors
    assert not check.warnings
    with rasterio.open(target) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.block_shapes[0] == (COG_BLOCK, COG_BLOCK)
        assert ds.compression.name.lower() == "deflate"
        assert ds.overviews(1) == [2, 4]  # down to one tile: 700 / 4 < 256
        assert ds.descriptions == tuple(BANDS) and ds.nodata == 0
        assert ds.tags()["SOURCE"] == "test"
        np.testing.assert_array_equal(ds.read(), data)
        # Averaged overview: the mean of each 2 x 2 block (GDAL rounds).
        ov = ds.read(1, out_shape=(350, 300))
    expected = data[0].reshape(350, 2, 300, 2).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(ov - expected).max() <= 1
    assert [p.name for p in tmp_path.iterdir()] == ["img.tif"]


@pytest.mark.parametrize(("shape", "style"), [((700, 600), CONTINUOUS), ((1100, 300), CONTINUOUS),
                                            ((701, 603), CONTINUOUS), ((520, 530), LABELS),
                                            ((200, 180), CONTINUOUS)])
def test_prebuilt_overviews_equal_the_cog_drivers(tmp_path: Path, shape: tuple[int, int],
                                                  style: RasterStyle) -> None:
    """Streamed uncompressed with the overviews built first (``prebuilt``): the same levels and
    full-resolution pixels as the COG driver computing the overviews itself, a valid COG, no
    temporary file left. The overview pixels are the same where every level above has even
    sides (4096, 16384, 700 x 600); below an odd-sized level both average windows of the
    ratio of the level sizes (just under 2) but place them differently: same-level means."""
    h, w = shape
    rng = np.random.default_rng(1)
    if style is LABELS:
        data = rng.choice(np.array([0, 1, 255], dtype=np.uint8), (1, h, w))
        nodata, dtype, bands = 255, "uint8", None
    else:
        data = rng.integers(0, 4096, (2, h, w), dtype=np.uint16)
        data[:, 100:140, 50:90] = 0  # nodata, skipped by the averages
        nodata, dtype, bands = 0, "uint16", BANDS[:2]
    files = {}
    for prebuilt in (False, True):
        target = tmp_path / f"{prebuilt}.tif"
        with RasterWriter(target, _grid(h, w), data.shape[0], dtype, nodata, bands,
                          style=style, prebuilt=prebuilt) as wr:
            for r in range(0, h, 256):
                win = Window(r, 0, min(256, h - r), w)
                wr.write(data[(slice(None), *win.slices())], win)
        files[prebuilt] = target
        check = check_cog(target)
        assert check.valid, check.errors
    with rasterio.open(files[False]) as old, rasterio.open(files[True]) as new:
        assert new.overviews(1) == old.overviews(1) == overview_factors(h, w)
        assert new.profile == old.profile and new.descriptions == old.descriptions
        np.testing.assert_array_equal(new.read(), data)
        for i, f in enumerate(old.overviews(1)):
            size = (data.shape[0], -(-h // f), -(-w // f))
            got, want = new.read(out_shape=size), old.read(out_shape=size)
            if all(-(-n // g) % 2 == 0 for n in shape for g in [1, *old.overviews(1)][:i + 1]):
                np.testing.assert_array_equal(got, want)
            else:
                assert abs(got.mean() - want.mean()) < 0.01 * want.mean()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["False.tif", "True.tif"]


def test_overview_factors_down_to_one_tile() -> None:
    assert overview_factors(4096, 4096) == [2, 4, 8, 16]
    assert overview_factors(257, 10) == [2]
    assert overview_factors(256, 256) == []
    assert overview_factors(1100, 300) == [2, 4, 8]


def test_colour_interpretation_names_rgb_and_never_alpha(tmp_path: Path) -> None:
    """Blue/green/red/nir: the RGB bands say so and nir is undefined; an unnamed 4-band uint8
    image (GDAL's default would be RGBA) is gray + undefined, never alpha."""
    g = _grid(64, 64)
    write_raster(tmp_path / "bgrn.tif", np.ones((4, 64, 64), np.uint16), g, descriptions=BANDS)
    write_raster(tmp_path / "u8.tif", np.ones((4, 64, 64), np.uint8), g)
    with rasterio.open(tmp_path / "bgrn.tif") as ds:
        assert ds.colorinterp == (ColorInterp.blue, ColorInterp.green, ColorInterp.red,
                                  ColorInterp.undefined)
    with rasterio.open(tmp_path / "u8.tif") as ds:
        assert ds.colorinterp == (ColorInterp.gray, *[ColorInterp.undefined] * 3)
    assert color_interpretation(2, ["red", "red"], False) == ["gray", "undefined"]
    assert color_interpretation(1, None, True) == ["palette"]


def test_labels_have_a_colour_table_and_nearest_overviews(tmp_path: Path) -> None:
    """Masks and labels: palette with the landslide colour; overviews keep the label values
    (an average would invent values between 0, 1 and 255)."""
    g = _grid(600, 600)
    lab = (np.indices((600, 600)).sum(axis=0) % 3 == 0).astype(np.uint8)
    lab[:50] = 255
    write_raster(tmp_path / "lab.tif", lab, g, nodata=255, style=LABELS)
    assert check_cog(tmp_path / "lab.tif").valid
    with rasterio.open(tmp_path / "lab.tif") as ds:
        assert ds.colorinterp == (ColorInterp.palette,)
        assert ds.colormap(1)[1][:3] == LANDSLIDE_RGB
        assert ds.overviews(1) == [2, 4]
        ov = ds.read(1, out_shape=(300, 300))
    assert set(np.unique(ov)) <= {0, 1, 255}
    assert (ov[:25] == 255).all()


def test_probability_scale_description_and_nodata_aware_overviews(tmp_path: Path) -> None:
    """uint8 probability codes carry scale 1/254 and offset 0, so GDAL-aware tools read p;
    overviews average valid codes only (255 never leaks into a mean)."""
    g = _grid(512, 512)
    p = np.tile(np.linspace(0, 1, 512, dtype=np.float32), (512, 1))
    valid = np.ones_like(p, dtype=bool)
    valid[:, ::2] = False  # every other column nodata: each 2 x 2 block half nodata
    codes = encode_probability(p, valid)
    write_raster(tmp_path / "p.tif", codes, g, nodata=PROBABILITY_NODATA,
                 descriptions=["landslide probability"], style=probability_style("uint8"))
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.scales == (pytest.approx(1 / 254),) and ds.offsets == (0.0,)
        assert ds.units == ("probability",)
        assert ds.descriptions == ("landslide probability",)
        assert ds.colorinterp == (ColorInterp.gray,)
        ov = ds.read(1, out_shape=(256, 256))
    assert ov.max() <= 254
    np.testing.assert_array_equal(ov, codes[::2, 1::2])


def test_failed_write_leaves_no_stream_file(tmp_path: Path) -> None:
    g = _grid(300, 300)
    with pytest.raises(RuntimeError), RasterWriter(tmp_path / "x.tif", g, 1, "uint8") as w:
        w.write(np.zeros((1, 300, 300), np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="GDAL command-line tools absent")
def test_system_gdal_reads_the_cog_without_warnings(tmp_path: Path) -> None:
    """The COG written by rasterio's GDAL opens cleanly in the system's (Debian 12: 3.6)
    gdalinfo, with its overviews and colour table."""
    write_raster(tmp_path / "m.tif", np.ones((600, 600), np.uint8), _grid(600, 600),
                 nodata=255, descriptions=["landslide mask"], style=LABELS)
    r = subprocess.run(["gdalinfo", str(tmp_path / "m.tif")], capture_output=True, text=True,
                       check=True)
    assert "Warning" not in r.stderr and "ERROR" not in r.stderr
    assert "LAYOUT=COG" in r.stdout and "Overviews: 300x300" in r.stdout
    assert "ColorInterp=Palette" in r.stdout
