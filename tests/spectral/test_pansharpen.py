"""Pan-sharpening: HPF parameter table, formulas, streaming == whole image, checks, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

import landslip.spectral.pansharpen as pansharpen_module
from landslip.cli.app import main
from landslip.errors import CRSMismatchError, GridError, InputError
from landslip.grid import Grid
from landslip.io.cog import check_cog
from landslip.io.raster import read_raster, write_raster
from landslip.spectral.fusion import check_pair, compute_stats, pansharpen
from landslip.spectral.hpf_params import HPF_TABLE, hpf_parameters
from landslip.spectral.pansharpen import (
    PixelMapping,
    box_sum,
    fuse_arrays,
    high_pass,
    pad_reflect,
    to_output_dtype,
    upsample_bilinear,
)

CRS_UTM = CRS.from_epsg(32654)
X0, Y0 = 500_000.0, 4_750_000.0
BANDS = ("blue", "green", "red", "nir")


def _scene(h: int = 96, w: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A PAN (h, w) uint16 and an MS (4, h/4, w/4) uint16 with shared structure."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 800 * np.sin(x / 7.0) * np.cos(y / 9.0) + 300 * ((x // 12 + y // 10) % 2)
    pan = (3000 + base + rng.normal(0, 30, (h, w))).astype(np.uint16)
    low = base.reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))
    ms = np.stack([1500 + k * 200 + (0.6 + 0.1 * k) * low for k in range(4)])
    ms = (ms + rng.normal(0, 10, ms.shape)).astype(np.uint16)
    return pan, ms


def _write_pair(tmp: Path, pan: np.ndarray, ms: np.ndarray, ms_nodata: float | None = None,
                pan_res: float = 1.5, ms_res: float = 6.0, ms_crs: CRS = CRS_UTM,
                ms_x0: float = X0, pan_nodata: float | None = None) -> tuple[Path, Path]:
    p, m = tmp / "pan.tif", tmp / "ms.tif"
    write_raster(p, pan, Grid.from_bounds(CRS_UTM, X0, Y0, pan_res, *pan.shape),
                 nodata=pan_nodata)
    write_raster(m, ms, Grid.from_bounds(ms_crs, ms_x0, Y0, ms_res, *ms.shape[1:]),
                 nodata=ms_nodata, descriptions=BANDS)
    return p, m


# ----------------------------------------------------------------------------- table


@pytest.mark.parametrize(
    ("ratio", "kernel", "centres", "mods"),
    [
        (1.0, 5, (24, 28, 32), (0.20, 0.25, 0.30)),
        (2.0, 5, (24, 28, 32), (0.20, 0.25, 0.30)),
        (2.5, 7, (48, 56, 64), (0.35, 0.50, 0.65)),
        (3.0, 7, (48, 56, 64), (0.35, 0.50, 0.65)),
        (3.5, 9, (80, 93, 106), (0.35, 0.50, 0.65)),
        (4.0, 9, (80, 93, 106), (0.35, 0.50, 0.65)),
        (5.5, 11, (120, 150, 180), (0.50, 0.65, 1.00)),
        (7.49, 11, (120, 150, 180), (0.50, 0.65, 1.00)),
        (7.5, 13, (168, 210, 252), (0.65, 1.00, 1.40)),
        (9.5, 15, (336, 392, 448), (1.00, 1.35, 2.00)),
        (20.0, 15, (336, 392, 448), (1.00, 1.35, 2.00)),
    ],
)
def test_hpf_table_lookup(ratio: float, kernel: int, centres: tuple[int, int, int],
                          mods: tuple[float, float, float]) -> None:
    for ci, center in enumerate(("low", "mid", "high")):
        for mi, modulation in enumerate(("min", "mid", "max")):
            p = hpf_parameters(ratio, center, modulation)  # type: ignore[arg-type]
            assert (p.kernel, p.center, p.modulation) == (kernel, centres[ci], mods[mi])
            assert p.second_kernel is None
    default = hpf_parameters(ratio)
    assert (default.center, default.modulation) == (centres[0], mods[1])


def test_second_pass_parameters_and_limits() -> None:
    p = hpf_parameters(6.0, "mid", "max", second_pass=True)
    assert (p.kernel, p.center, p.modulation) == (11, 150, 1.00)
    assert (p.second_kernel, p.second_center, p.second_modulation) == (5, 28, 0.50)
    assert p.halo == 5
    low = hpf_parameters(10.0, second_pass=True)
    assert (low.second_center, low.second_modulation) == (24, 0.35)
    with pytest.raises(InputError, match=r"5\.5"):
        hpf_parameters(4.0, second_pass=True)
    with pytest.raises(InputError, match=">= 1"):
        hpf_parameters(0.5)
    with pytest.raises(InputError, match="centre"):
        hpf_parameters(4.0, "huge")  # type: ignore[arg-type]
    assert len(HPF_TABLE) == 6


# ----------------------------------------------------------------------------- formulas


def test_high_pass_equals_explicit_convolution() -> None:
    rng = np.random.default_rng(1)
    pan = rng.integers(0, 4000, (40, 37)).astype(np.float32)
    for k, c in ((5, 24), (9, 93), (15, 448)):
        kern = -np.ones((k, k))
        kern[k // 2, k // 2] = c
        expected = ndimage.convolve(pan.astype(np.float64), kern, mode="reflect")
        got = high_pass(pad_reflect(pan, k // 2, k // 2, k // 2, k // 2), k, c, k // 2)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)
    # With a larger halo than the kernel needs, the result is the same.
    got = high_pass(pad_reflect(pan, 7, 7, 7, 7), 5, 24, 7)
    kern = -np.ones((5, 5))
    kern[2, 2] = 24
    np.testing.assert_allclose(got, ndimage.convolve(pan.astype(np.float64), kern,
                                                     mode="reflect"), atol=1e-3)


def test_box_sum_exact_for_uint16() -> None:
    a = np.full((20, 20), 65535, dtype=np.uint16)
    assert np.all(box_sum(a, 15) == 15 * 15 * 65535)


@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint8"])
def test_integer_box_sums_equal_the_float_path(dtype: str) -> None:
    # 8/16-bit data are summed in int32 by binary doubling; the float32 path (correlate1d)
    # is exact for them too, so both must agree bit for bit, extremes included.
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    a = rng.integers(info.min, info.max, (45, 38), endpoint=True).astype(dtype)
    a[:15, :15] = info.max
    a[30:, 20:] = info.min
    for k in (1, 3, 5, 7, 9, 11, 13, 15):
        got = box_sum(a, k)
        assert got.dtype == np.float32 and got.shape == (46 - k, 39 - k)
        np.testing.assert_array_equal(got, box_sum(a.astype(np.float32), k))
        windows = np.lib.stride_tricks.sliding_window_view(a.astype(np.int64), (k, k))
        np.testing.assert_array_equal(got, windows.sum(axis=(2, 3)))
    for k, c in ((5, 24), (9, 106), (15, 448)):
        padded = pad_reflect(a, 8, 8, 8, 8)
        out = np.empty(a.shape, dtype=np.float32)
        got = high_pass(padded, k, c, 8, out=out)
        assert got is out
        np.testing.assert_array_equal(got, high_pass(padded.astype(np.float32), k, c, 8))


def test_bilinear_alignment_pixel_centres() -> None:
    # MS pixel centres sit at PAN edge coordinates 2, 6, 10, ... for R = 4 (pixel-is-area).
    ms = np.arange(4, dtype=np.float32).reshape(1, 1, 4) * 10
    ms = np.repeat(ms, 2, axis=1)
    m = PixelMapping.aligned(4)
    up = upsample_bilinear(ms, m.rows(0, 8), m.cols(0, 16), (2, 4))[0, 0]
    # PAN column j has MS coordinate (j + 0.5) / 4 - 0.5.
    expected = np.clip((np.arange(16) + 0.5) / 4 - 0.5, 0, 3) * 10
    np.testing.assert_allclose(up, expected, atol=1e-5)
    assert up[1] == up[0] == 0.0  # before the first MS centre: edge value held
    # MS pixel 1 covers PAN columns 4..7; its centre lies between PAN columns 5 and 6.
    assert (up[5], up[6]) == (pytest.approx(8.75), pytest.approx(11.25))
    assert up[4:8].mean() == pytest.approx(10.0)


def test_hpf_matches_formula_on_small_array() -> None:
    pan, ms = _scene(48, 48)
    m = PixelMapping.aligned(4)
    params = hpf_parameters(4.0)
    fused, valid, _stats = fuse_arrays(pan, ms, m, "hpf", params, histogram_match=False)
    assert valid.all()
    # Step by step as in docs/reference.md, in float64.
    kern = -np.ones((9, 9))
    kern[4, 4] = 80
    hp = ndimage.convolve(pan.astype(np.float64), kern, mode="reflect")
    up = upsample_bilinear(ms.astype(np.float32), m.rows(0, 48), m.cols(0, 48), (12, 12))
    for b in range(4):
        w = ms[b].astype(np.float64).std() / hp.std() * 0.5
        f = np.clip(up[b] + w * hp, ms[b].min(), ms[b].max())
        np.testing.assert_allclose(fused[b], f, rtol=1e-4, atol=0.05)
    # With histogram match: mean and SD of the output equal those of the MS band (before clip).
    fused_hm, _, _ = fuse_arrays(pan, ms, m, "hpf", params)
    for b in range(4):
        band = fused_hm[b].astype(np.float64)
        inside = (band > ms[b].min()) & (band < ms[b].max())
        assert inside.mean() > 0.9
        assert band.mean() == pytest.approx(ms[b].mean(), rel=0.01)
        assert band.std() == pytest.approx(ms[b].std(), rel=0.05)


def test_second_pass_adds_fine_detail_at_r6() -> None:
    rng = np.random.default_rng(5)
    pan = (2000 + 300 * rng.random((60, 60))).astype(np.uint16)
    ms = (1000 + 100 * rng.random((4, 10, 10))).astype(np.uint16)
    m = PixelMapping.aligned(6)
    one, _, _ = fuse_arrays(pan, ms, m, "hpf", hpf_parameters(6.0))
    two, _, stats = fuse_arrays(pan, ms, m, "hpf", hpf_parameters(6.0, second_pass=True))
    assert not np.allclose(one, two)
    # The histogram match still holds the band means.
    assert two[0].mean() == pytest.approx(stats.ms_mean[0], rel=0.01)


def test_brovey_fitted_weights_and_given_weights() -> None:
    pan, ms = _scene(48, 48)
    m = PixelMapping.aligned(4)
    # PAN built exactly from the up-sampled bands: the fit recovers the weights.
    up = upsample_bilinear(ms.astype(np.float32), m.rows(0, 48), m.cols(0, 48), (12, 12))
    synthetic = 0.5 * up[0] + 0.3 * up[1] + 0.2 * up[2]
    fused, _, stats = fuse_arrays(synthetic, ms, m, "brovey")
    np.testing.assert_allclose(fused, up, rtol=1e-4)
    from landslip.spectral.fusion_stats import brovey_weights

    np.testing.assert_allclose(brovey_weights(stats), [0.5, 0.3, 0.2, 0.0], atol=1e-4)
    fused_eq, _, _ = fuse_arrays(pan, ms, m, "brovey", weights=[0.25] * 4)
    pseudo = up.mean(axis=0)
    np.testing.assert_allclose(fused_eq, up * pan / pseudo, rtol=1e-4)
    with pytest.raises(InputError, match="one weight per MS band"):
        fuse_arrays(pan, ms, m, "brovey", weights=[1.0, 1.0])


def test_to_output_dtype_rounds_clips_and_keeps_nodata_free() -> None:
    f = np.array([[[-3.2, 0.4, 1.6, 70000.0]]], dtype=np.float32)
    valid = np.array([[True, True, True, False]])
    out = to_output_dtype(f, valid, np.dtype("uint16"), 0)
    assert out.dtype == np.uint16
    assert out.tolist() == [[[1, 1, 2, 0]]]  # 0 is nodata: valid zeros move to 1


# ----------------------------------------------------------------------------- streaming


@pytest.mark.parametrize(("method", "row_chunk"),
                         [("hpf", 64), ("brovey", 64), ("bilinear", 64), ("hpf", 7),
                          ("brovey", 5)])
def test_windowed_equals_whole_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     method: str, row_chunk: int) -> None:
    # Small row chunks split every tile (and the whole image) into uneven row steps.
    monkeypatch.setattr(pansharpen_module, "ROW_CHUNK", row_chunk)
    pan, ms = _scene(100, 84)
    ms[:, 3, 5] = 0  # an MS nodata pixel
    pan[60, 70] = 0  # a PAN nodata pixel
    p, m = _write_pair(tmp_path, pan, ms, ms_nodata=0, pan_nodata=0)
    setup = check_pair(p, m)
    params = hpf_parameters(setup.ratio) if method == "hpf" else None
    stats = compute_stats(setup, params, tile=32, progress=False)
    out = tmp_path / f"{method}.tif"
    pansharpen(p, m, out, method=method, tile=32, stats=stats,  # type: ignore[arg-type]
               workers=2)
    got, _grid = read_raster(out)
    fused, valid, _ = fuse_arrays(pan, ms, setup.mapping, method,  # type: ignore[arg-type]
                                  params, pan_nodata=0, ms_nodata=0, stats=stats)
    expected = to_output_dtype(fused, valid, np.dtype("uint16"), 0)
    np.testing.assert_array_equal(got, expected)
    assert not valid[10:18, 18:26].any()  # around the nodata MS pixel
    assert (got[:, 13, 21] == 0).all()
    # The MS nodata pixel is a bilinear tap of 8 x 8 PAN pixels; plus the PAN nodata pixel.
    assert (got[:, 60, 70] == 0).all() and valid.sum() == valid.size - 65


def test_output_is_a_cog_with_overviews_and_the_plain_fusion(tmp_path: Path) -> None:
    """The output (overviews built before the COG copy) is a valid COG with the COG driver's
    overview levels and averages, and its full resolution is the plain fusion bit for bit."""
    pan, ms = _scene(560, 528)
    p, m = _write_pair(tmp_path, pan, ms)
    setup = check_pair(p, m)
    params = hpf_parameters(setup.ratio)
    stats = compute_stats(setup, params, tile=256, progress=False)
    out = tmp_path / "fused.tif"
    pansharpen(p, m, out, tile=256, stats=stats, workers=2)
    fused, valid, _ = fuse_arrays(pan, ms, setup.mapping, "hpf", params, stats=stats)
    expected = to_output_dtype(fused, valid, np.dtype("uint16"), None)
    check = check_cog(out)
    assert check.valid and not check.warnings, check.errors
    plain = write_raster(tmp_path / "plain.tif", expected, setup.out_grid)  # COG driver's
    with rasterio.open(out) as ds, rasterio.open(plain) as ref:
        np.testing.assert_array_equal(ds.read(), expected)
        assert ds.overviews(1) == ref.overviews(1) == [2, 4]
        for f in (2, 4):
            size = (4, 560 // f, 528 // f)
            np.testing.assert_array_equal(ds.read(out_shape=size), ref.read(out_shape=size))


def test_zstd_output_holds_the_same_pixels_and_overviews(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``--compress zstd``: a valid COG, ZSTD-compressed with the predictor, and the same full
    resolution and overviews as the default DEFLATE output; a bad value exits 2."""
    pan, ms = _scene(560, 528)
    p, m = _write_pair(tmp_path, pan, ms)
    out = {c: tmp_path / f"{c}.tif" for c in ("deflate", "zstd")}
    assert main(["-q", "pansharpen", str(p), str(m), "-o", str(out["deflate"])]) == 0
    assert main(["-q", "pansharpen", str(p), str(m), "-o", str(out["zstd"]),
                 "--compress", "zstd"]) == 0
    check = check_cog(out["zstd"])
    assert check.valid and not check.warnings, check.errors
    with rasterio.open(out["deflate"]) as d, rasterio.open(out["zstd"]) as z:
        assert (d.compression.name, z.compression.name) == ("deflate", "zstd")
        assert z.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
        np.testing.assert_array_equal(z.read(), d.read())
        assert z.overviews(1) == d.overviews(1) == [2, 4]
        np.testing.assert_array_equal(z.read(out_shape=(4, 140, 132)),
                                      d.read(out_shape=(4, 140, 132)))
    capsys.readouterr()
    assert main(["pansharpen", str(p), str(m), "-o", str(tmp_path / "o.tif"),
                 "--compress", "lzma"]) == 2
    assert not (tmp_path / "o.tif").exists()
    with pytest.raises(InputError, match="--compress must be one of deflate, zstd"):
        pansharpen(p, m, tmp_path / "o.tif", compress="lzma")  # type: ignore[arg-type]


def test_statistics_do_not_depend_on_workers_or_row_chunk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pan, ms = _scene(96, 96)
    ms[:, 5, 7] = 0
    p, m = _write_pair(tmp_path, pan, ms, ms_nodata=0, pan_nodata=0)
    setup = check_pair(p, m)
    params = hpf_parameters(setup.ratio)
    one = compute_stats(setup, params, tile=32, progress=False, workers=1)
    assert compute_stats(setup, params, tile=32, progress=False, workers=3) == one
    monkeypatch.setattr(pansharpen_module, "ROW_CHUNK", 6)
    chunked = compute_stats(setup, params, tile=32, progress=False, workers=2)
    # Other row steps change the summation order only: rounding-level differences.
    assert chunked.ms_mean == one.ms_mean and chunked.n == one.n
    np.testing.assert_allclose(chunked.cov, one.cov, rtol=1e-12)


def test_failed_tile_leaves_no_file_and_closes_every_dataset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import landslip.spectral.fusion as fusion

    pan, ms = _scene(96, 96)
    p, m = _write_pair(tmp_path, pan, ms)
    opened: list[object] = []
    real_get, real_fuse = fusion._Readers.get, fusion.fuse_block
    calls = iter(range(1000))

    def get(self: fusion._Readers) -> tuple[object, object]:
        pair = real_get(self)
        opened.extend(ds for ds in pair if ds not in opened)
        return pair

    def fuse_block(*args: object, **kwargs: object) -> object:
        if next(calls) == 4:
            raise RuntimeError("tile failed")
        return real_fuse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fusion._Readers, "get", get)
    monkeypatch.setattr(fusion, "fuse_block", fuse_block)
    with pytest.raises(RuntimeError, match="tile failed"):
        pansharpen(p, m, tmp_path / "out.tif", tile=16, workers=2)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["ms.tif", "pan.tif"]
    assert opened and all(ds.closed for ds in opened)  # type: ignore[attr-defined]


def test_output_grid_dtype_descriptions_nodata(tmp_path: Path) -> None:
    pan, ms = _scene(64, 64)
    p, m = _write_pair(tmp_path, pan, ms, ms_nodata=0)
    out = tmp_path / "fused.tif"
    result = pansharpen(p, m, out)
    with rasterio.open(out) as ds:
        assert ds.count == 4 and ds.dtypes == ("uint16",) * 4
        assert ds.descriptions == BANDS
        assert ds.nodata == 0
        assert ds.crs == CRS_UTM
        assert ds.transform == Affine(1.5, 0, X0, 0, -1.5, Y0)
        assert (ds.height, ds.width) == (64, 64)
        assert ds.profile["compress"] == "deflate"
        fused = ds.read()
    assert result.ratio == pytest.approx(4.0)
    assert result.params is not None and result.params.kernel == 9
    # The fused bands keep the MS band order and radiometry.
    for b in range(4):
        assert abs(fused[b].mean() - ms[b].mean()) < 0.02 * ms[b].mean()
    assert fused[3].mean() > fused[0].mean()


def test_float_ms_and_partial_overlap(tmp_path: Path) -> None:
    pan, ms = _scene(64, 64)
    # MS shifted right by 2 MS pixels: the output is the part of the PAN under the MS.
    p, m = _write_pair(tmp_path, pan, ms.astype(np.float32), ms_x0=X0 + 12.0)
    setup = check_pair(p, m)
    assert setup.out_window.col_off == 8 and setup.out_window.width == 56
    out = tmp_path / "f.tif"
    pansharpen(p, m, out, method="bilinear")
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "float32" and ds.width == 56
        assert ds.transform.c == X0 + 12.0


def test_errors_crs_overlap_ratio_bands(tmp_path: Path) -> None:
    pan, ms = _scene(64, 64)
    p, m = _write_pair(tmp_path, pan, ms, ms_crs=CRS.from_epsg(32653))
    with pytest.raises(CRSMismatchError, match=r"EPSG:32654.*EPSG:32653"):
        check_pair(p, m)
    p, m = _write_pair(tmp_path, pan, ms, ms_x0=X0 + 10_000)
    with pytest.raises(GridError, match="do not overlap"):
        check_pair(p, m)
    p, m = _write_pair(tmp_path, pan, ms, pan_res=6.0, ms_res=1.5)
    with pytest.raises(GridError, match="coarser"):
        check_pair(p, m)
    p, m = _write_pair(tmp_path, pan, ms, pan_res=0.1, ms_res=6.0)
    with pytest.raises(GridError, match="make no sense"):
        check_pair(p, m)
    p, m = _write_pair(tmp_path, pan, ms)
    with pytest.raises(InputError, match="one"):
        check_pair(m, m)
    with pytest.raises(InputError, match="brovey only"):
        pansharpen(p, m, tmp_path / "x.tif", weights=[1, 1, 1, 1])


# ----------------------------------------------------------------------------- CLI


def test_cli_pansharpen_and_assess(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pan, ms = _scene(128, 128)
    p, m = _write_pair(tmp_path, pan, ms)
    out = tmp_path / "fused.tif"
    assert main(["-q", "pansharpen", str(p), str(m), "-o", str(out)]) == 0
    assert "4 bands x 128 x 128" in capsys.readouterr().out
    assert out.exists()
    assert main(["-q", "pansharpen", str(p), str(m), "-o", str(out), "--method", "brovey",
                 "--weights", "0.3,0.3,0.3,0.1"]) == 0
    capsys.readouterr()
    js = tmp_path / "wald.json"
    assert main(["-q", "pansharpen-assess", str(p), str(m), "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "hpf" in text and "ERGAS" in text
    report = json.loads(js.read_text())
    assert [s["method"] for s in report["scores"]] == ["bilinear", "hpf", "brovey"]
    assert report["ratio"] == 4


def test_cli_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pan, ms = _scene(64, 64)
    p, m = _write_pair(tmp_path, pan, ms, ms_crs=CRS.from_epsg(4326))
    assert main(["pansharpen", str(p), str(m), "-o", str(tmp_path / "o.tif")]) == 2
    assert "Error:" in capsys.readouterr().err
    assert main(["pansharpen", str(p), str(tmp_path / "missing.tif"), "-o",
                 str(tmp_path / "o.tif")]) == 2
    assert main(["pansharpen", str(p), str(m), "-o", str(tmp_path / "o.tif"),
                 "--method", "ihs"]) == 2
    assert main(["pansharpen", str(p), str(m), "-o", str(tmp_path / "o.tif"),
                 "--center", "top"]) == 2
    p, m = _write_pair(tmp_path, pan, ms)
    assert main(["pansharpen", str(p), str(m), "-o", str(tmp_path / "o.tif"),
                 "--weights", "a,b"]) == 2
    assert main(["pansharpen", str(p), str(m), "-o", str(tmp_path / "o.tif"),
                 "--second-pass"]) == 2
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.slow
def test_synthetic_scene_fuses(tmp_path: Path) -> None:
    scene_mod = pytest.importorskip("landslip.synthetic.scene")
    if not hasattr(scene_mod, "make_scene"):
        pytest.skip("landslip.synthetic.scene.make_scene is not available")
    scene = scene_mod.make_scene(tmp_path / "scene", size=256, seed=1, preview=False)
    out = tmp_path / "fused.tif"
    result = pansharpen(scene.pan, scene.ms, out)
    assert result.grid.aligned_with(scene.pan_grid)
    with rasterio.open(out) as ds:
        assert ds.count == 4 and ds.dtypes[0] == "uint16"
