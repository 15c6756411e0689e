"""Streaming pan-sharpening of GDAL raster pairs: checks, statistics pass, windowed fusion.

:func:`pansharpen` reads a one-band PAN raster and a multi-band MS raster (any format GDAL
reads), checks that they can be fused, and writes the fused bands on the PAN grid with the MS
dtype, band descriptions and nodata, as a tiled DEFLATE GeoTIFF (BigTIFF when needed).

Streaming design (peak memory independent of the scene size):

1. *Checks*: same CRS (:class:`~landslip.errors.CRSMismatchError` naming both), overlapping
   extents, x and y pixel-size ratios equal within 1 % and 1 <= R <= 32, one PAN band. The
   output grid is the window of the PAN grid whose pixel centres lie inside the MS extent.
2. *Statistics pass*: per-band mean, SD, min and max of the MS over the MS pixels that feed
   the output (streamed in strips, exact); then the mean and covariance of
   z = (HP1, HP2, MSup_1..C, PAN) over valid output pixels of a sample of output tiles (all
   tiles when the output has at most :data:`STATS_SAMPLE_PIXELS` pixels, otherwise tiles spread
   evenly over the scene covering at least that many pixels and at least 1/16 of the output).
   HPF weights, the histogram match and the Brovey least-squares weights all derive from these
   moments (:func:`landslip.spectral.fusion_stats.make_transform`). Strips and tiles are
   summarised in worker threads and merged in order, so the result does not depend on them.
3. *Fusion pass*: output tiles of ``tile`` x ``tile`` pixels; each reads its PAN window plus a
   halo of ``kernel // 2`` pixels (mirrored at the image edges, as the whole-image reference
   :func:`~landslip.spectral.pansharpen.fuse_arrays` does) and the MS pixels its bilinear taps
   touch, so the result equals whole-image processing bit for bit. Worker threads fuse tiles
   while the main thread writes them in order into an uncompressed temporary GeoTIFF.
4. *Cloud-Optimized GeoTIFF*: GDAL averages the overviews into the temporary file, then its
   COG driver copies them and compresses every pixel once, in all CPUs, at DEFLATE (or, with
   ``compress="zstd"``, ZSTD) level
   :data:`OUTPUT_ZLEVEL` (``RasterWriter(prebuilt=True)``, :func:`landslip.io.cog.cog_target`).
   The full-resolution pixels and the overviews are the same as with the COG driver computing
   the overviews itself, which cost a compressed temporary overview file and about a third of
   the CPU time.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from landslip.errors import GridError, InputError
from landslip.grid import Grid, Window, crs_name, iter_clipped_tiles
from landslip.io.checks import declare_nodata
from landslip.io.cog import COMPRESSIONS, Compression
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterInfo, RasterWriter, open_checked, raster_info
from landslip.moments import RunningMoments
from landslip.progress import track
from landslip.spectral.fusion_stats import FusionStats, make_transform
from landslip.spectral.hpf_params import Center, HPFParams, Method, Modulation, hpf_parameters
from landslip.spectral.pansharpen import (
    Block,
    PixelMapping,
    apply_nodata,
    block_moments,
    fuse_block,
    make_block,
    ms_span,
    nodata_mask,
    pad_reflect,
)

__all__ = [
    "MAX_RATIO",
    "STATS_SAMPLE_PIXELS",
    "FusionResult",
    "PairSetup",
    "check_pair",
    "compute_stats",
    "pansharpen",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

STATS_SAMPLE_PIXELS = 1 << 22
"""Output pixels the statistics pass covers at least (about 4.2 million)..."""

STATS_SAMPLE_SHARE = 16
"""...and at least 1 / STATS_SAMPLE_SHARE of the output (16 of 256 tiles for 16384 x 16384)."""

GDAL_CACHE_MB = 256
"""GDAL block cache in MiB while reading and writing (its default, 5 % of RAM, would let dirty
output blocks pile up to gigabytes on large scenes before they are flushed)."""

OUTPUT_ZLEVEL = 1
"""DEFLATE level of the fused GeoTIFF. Compression is most of the CPU time of a fusion; on
16-bit fused bands (noise in the low bits, predictor 2) libdeflate's level 1 took about 25 %
less CPU than the default level 6 and made a slightly smaller file (95.4 vs 98.7 MB for the
4096 x 4096 benchmark), and every DEFLATE reader reads it."""

MAX_RATIO = 32.0
"""Largest accepted MS / PAN pixel-size ratio."""


@dataclass(frozen=True)
class PairSetup:
    """A checked PAN/MS pair and the geometry of the fused output.

    Attributes:
        pan: PAN raster info (one band).
        ms: MS raster info.
        ratio: R = MS pixel size / PAN pixel size (mean of x and y).
        out_window: The output window on the PAN grid (pixel centres inside the MS extent).
        out_grid: The output grid (a window of the PAN grid).
        mapping: Output pixel -> fractional MS pixel index.
        ms_window: MS pixels that the output's bilinear taps read.
        nodata: Output nodata (MS nodata, else PAN nodata when the MS dtype holds it).
    """

    pan: RasterInfo
    ms: RasterInfo
    ratio: float
    out_window: Window
    out_grid: Grid
    mapping: PixelMapping
    ms_window: Window
    nodata: float | None


def _index_range(lo_edge: float, hi_edge: float, origin: float, step: float, n: int
                 ) -> tuple[int, int]:
    """Pixel indices [first, last] whose centres lie within [lo_edge, hi_edge] (map units)."""
    a = (lo_edge - origin) / step - 0.5
    b = (hi_edge - origin) / step - 0.5
    first = max(math.ceil(min(a, b) - 1e-9), 0)
    last = min(math.floor(max(a, b) + 1e-9), n - 1)
    return first, last


def check_pair(pan_path: str | Path, ms_path: str | Path, nodata: float | None = None
               ) -> PairSetup:
    """Open and check a PAN/MS pair; compute the output geometry.

    ``nodata`` (``--nodata``) is the nodata value of both images when their files lack the tag.

    Raises:
        CRSMismatchError: When the CRSs differ (both are named).
        GridError: When the extents do not overlap or the pixel-size ratio makes no sense.
        InputError: When the PAN has more than one band.
        RasterIOError: When a file cannot be read.
    """
    pan = declare_nodata(raster_info(pan_path), nodata)
    ms = declare_nodata(raster_info(ms_path), nodata)
    if pan.count != 1:
        raise InputError(
            f"the PAN image {pan.path} has {pan.count} bands but must have one; extract the "
            "panchromatic band first (for example gdal_translate -b 1)"
        )
    pan.grid.require_same_crs(ms.grid, "PAN and MS images")
    if pan.grid.crs is None:
        log.warning("neither image has a CRS; assuming both share the same map coordinates")
    rx = ms.grid.res[0] / pan.grid.res[0]
    ry = ms.grid.res[1] / pan.grid.res[1]
    if abs(rx - ry) > 0.01 * max(rx, ry):
        raise GridError(
            f"the MS/PAN pixel-size ratio differs in x ({rx:.4g}) and y ({ry:.4g}); resample "
            "the images to square pixels first (gdalwarp -tr)"
        )
    ratio = (rx + ry) / 2
    if ratio < 1.0:
        raise GridError(
            f"the PAN pixels ({pan.grid.res[0]:g}) are coarser than the MS pixels "
            f"({ms.grid.res[0]:g}); give the panchromatic image first: landslip pansharpen PAN MS"
        )
    if ratio > MAX_RATIO:
        raise GridError(
            f"the MS pixels are {ratio:.1f} times the PAN pixels; ratios above {MAX_RATIO:g} make "
            "no sense for pan-sharpening (expected about 2 to 5, SPOT-7: 6 m / 1.5 m = 4)"
        )
    pt, mt = pan.grid.transform, ms.grid.transform
    left, bottom, right, top = ms.grid.bounds
    c0, c1 = _index_range(left, right, pt.c, pt.a, pan.grid.width)
    r0, r1 = _index_range(bottom, top, pt.f, pt.e, pan.grid.height)
    if c1 < c0 or r1 < r0:
        raise GridError(
            f"the PAN and MS images do not overlap: PAN bounds {_fmt(pan.grid.bounds)}, MS bounds "
            f"{_fmt(ms.grid.bounds)} ({crs_name(pan.grid.crs)})"
        )
    out_window = Window(r0, c0, r1 - r0 + 1, c1 - c0 + 1)
    out_grid = pan.grid.window_grid(out_window)
    ot = out_grid.transform
    mapping = PixelMapping(ot.a / mt.a, (ot.c - mt.c) / mt.a, ot.e / mt.e, (ot.f - mt.f) / mt.e)
    halo = max(hpf_parameters(ratio).halo, 7)
    if pan.grid.height <= 2 * halo or pan.grid.width <= 2 * halo:
        raise GridError(
            f"the PAN image is {pan.grid.height} x {pan.grid.width} pixels; it must be larger "
            f"than {2 * halo} x {2 * halo} for the high-pass filter"
        )
    mr = ms_span(mapping.rows(0, out_grid.height), ms.grid.height)
    mc = ms_span(mapping.cols(0, out_grid.width), ms.grid.width)
    ms_window = Window(mr[0], mc[0], mr[1] - mr[0], mc[1] - mc[0])
    if out_window != pan.grid.full_window():
        log.info("the MS covers part of the PAN only; output is the PAN window %s", out_window)
    return PairSetup(pan, ms, ratio, out_window, out_grid, mapping, ms_window,
                     _output_nodata(pan, ms))


def _fmt(b: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in b) + ")"



def _output_nodata(pan: RasterInfo, ms: RasterInfo) -> float | None:
    if ms.nodata is not None:
        return ms.nodata
    dt = np.dtype(ms.dtype)
    pan_float = np.dtype(pan.dtype).kind == "f"  # NaN/inf PAN pixels are nodata
    if pan.nodata is None and not pan_float:
        return float("nan") if dt.kind == "f" else None  # NaN/inf MS pixels are nodata
    if dt.kind == "f":
        return pan.nodata if pan.nodata is not None else float("nan")
    info = np.iinfo(dt)
    if pan.nodata is not None and math.isfinite(pan.nodata) \
            and info.min <= pan.nodata <= info.max:
        return pan.nodata
    return 0.0


# ----------------------------------------------------------------------------- block loading


def _read_pan(ds: Any, setup: PairSetup, win: Window, halo: int) -> npt.NDArray[Any]:
    """The PAN block of output window ``win`` plus ``halo``, mirrored at the PAN edges."""
    g = Window(win.row_off + setup.out_window.row_off, win.col_off + setup.out_window.col_off,
               win.height, win.width).expand(halo)
    h, w = setup.pan.grid.shape
    inside = g.clip(h, w)
    data = ds.read(1, window=inside.to_rasterio())
    return np.asarray(pad_reflect(data, inside.row_off - g.row_off, g.row_end - inside.row_end,
                       inside.col_off - g.col_off, g.col_end - inside.col_end))


def _load_block(pan_ds: Any, ms_ds: Any, setup: PairSetup, win: Window, halo: int,
                pan_mean: float, ms_mean: Sequence[float]) -> Block:
    """Read the PAN (with halo) and the MS pixels under output window ``win``; see
    :func:`~landslip.spectral.pansharpen.make_block`."""
    raw = _read_pan(pan_ds, setup, win, halo)
    rows = setup.mapping.rows(win.row_off, win.height)
    cols = setup.mapping.cols(win.col_off, win.width)
    ms_shape = setup.ms.grid.shape
    r0, r1 = ms_span(rows, ms_shape[0])
    c0, c1 = ms_span(cols, ms_shape[1])
    ms_raw = ms_ds.read(window=Window(r0, c0, r1 - r0, c1 - c0).to_rasterio())
    return make_block(raw, halo, ms_raw, rows, cols, ms_shape, (r0, c0),
                      (setup.pan.nodata, setup.ms.nodata), pan_mean, ms_mean)


def _tiles(grid: Grid, tile: int) -> list[Window]:
    """The output tiles, row by row, clipped to the output grid."""
    return list(iter_clipped_tiles(grid.height, grid.width, tile))


def _sample(tiles: list[Window], total: int, want: int) -> list[Window]:
    if total <= want:
        return tiles
    per_tile = total / len(tiles)
    m = min(len(tiles), math.ceil(want / per_tile))
    # Evenly spread over the row-major tile order: with many tiles per row this walks
    # diagonally across the scene, so the sample covers all rows and columns.
    idx = sorted({round(i) for i in np.linspace(0, len(tiles) - 1, m)})
    return [tiles[i] for i in idx]


class _Readers:
    """One pair of open rasterio datasets per thread (GDAL handles are not thread-safe)."""

    def __init__(self, setup: PairSetup) -> None:
        self.setup = setup
        self.local = threading.local()
        self.lock = threading.Lock()
        self.opened: list[Any] = []

    def get(self) -> tuple[Any, Any]:
        pair = getattr(self.local, "pair", None)
        if pair is None:
            pair = (open_checked(self.setup.pan.path), open_checked(self.setup.ms.path))
            self.local.pair = pair
            with self.lock:
                self.opened.extend(pair)
        return pair

    def __enter__(self) -> _Readers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every dataset opened so far."""
        with self.lock:
            for ds in self.opened:
                ds.close()
            self.opened.clear()


def _worker_count(workers: int) -> int:
    """Worker threads for ``workers`` (0: up to 4, by CPU count)."""
    return workers if workers > 0 else min(4, os.cpu_count() or 1)


def _ordered_map(fn: Callable[[Window], T], items: list[Window], workers: int
                 ) -> Generator[T, None, None]:
    """``map(fn, items)`` in order, computed by ``workers`` threads, at most 2x in flight."""
    if workers <= 1:
        yield from (fn(w) for w in items)
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="landslip-fuse") as pool:
        pending: deque[Future[T]] = deque()
        try:
            for w in items:
                pending.append(pool.submit(fn, w))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


# ----------------------------------------------------------------------------- statistics


def compute_stats(
    setup: PairSetup,
    params: HPFParams | None,
    tile: int = 1024,
    sample_pixels: int = STATS_SAMPLE_PIXELS,
    progress: bool = True,
    workers: int = 0,
) -> FusionStats:
    """The statistics pass: exact MS band statistics, sampled moments of (HP, MSup, PAN).

    MS strips and sample tiles are summarised in worker threads and the summaries merged in
    a fixed order, so the result does not depend on the number of workers.

    Args:
        setup: From :func:`check_pair`.
        params: HPF parameters (None: no high-pass moments, for Brovey/bilinear).
        tile: Output tile size in pixels.
        sample_pixels: Minimum number of output pixels the moment sample covers.
        progress: Show a progress bar.
        workers: Worker threads (0: up to 4, by CPU count; 1: no threads).

    Raises:
        InputError: When the MS or the PAN has no valid pixel in the overlap.
    """
    halo = params.halo if params is not None else 0
    n_workers = _worker_count(workers)
    with _Readers(setup) as readers:
        ms_moments = _ms_moments(setup, readers, n_workers)
        tiles = _tiles(setup.out_grid, tile)
        total = setup.out_grid.height * setup.out_grid.width
        chosen = _sample(tiles, total, max(sample_pixels, total // STATS_SAMPLE_SHARE))
        # The PAN mean fills PAN nodata before filtering; a PAN that cannot hold nodata (an
        # integer PAN without a nodata value) skips this extra read of the sample.
        pan_mean: float | None = None
        if setup.pan.nodata is not None or np.dtype(setup.pan.dtype).kind not in "iub":
            pan_mean = _pan_mean(setup, chosen, readers, n_workers)
        fill_pan, fill_ms = pan_mean or 0.0, ms_moments.mean.tolist()

        def moments(win: Window) -> RunningMoments:
            pan_ds, ms_ds = readers.get()
            blk = _load_block(pan_ds, ms_ds, setup, win, halo, fill_pan, fill_ms)
            return block_moments(blk, params)

        acc = RunningMoments(3 + setup.ms.count, covariance=True)
        with closing(_ordered_map(moments, chosen, n_workers)) as results:
            for m in (track(results, len(chosen), "pansharpen: statistics") if progress
                      else results):
                acc.merge(m)
    if acc.count == 0:
        raise InputError("no output pixel is valid in both the PAN and the MS image")
    if pan_mean is None:
        pan_mean = float(acc.mean[-1])
    return FusionStats.from_moments(ms_moments, pan_mean, acc)


def _ms_moments(setup: PairSetup, readers: _Readers, workers: int) -> RunningMoments:
    """Exact per-band moments of the MS pixels under the output, read in strips."""
    c, mw = setup.ms.count, setup.ms_window
    strip = max(1, (1 << 22) // max(mw.width * c, 1))
    strips = [Window(r, mw.col_off, min(strip, mw.row_end - r), mw.width)
              for r in range(mw.row_off, mw.row_end, strip)]

    def summarise(win: Window) -> RunningMoments:
        arr = readers.get()[1].read(window=win.to_rasterio())
        part = RunningMoments(c)
        part.update(arr, nodata_mask(arr, setup.ms.nodata))
        return part

    acc = RunningMoments(c)
    with closing(_ordered_map(summarise, strips, workers)) as parts:
        for part in parts:
            acc.merge(part)
    if acc.count == 0:
        raise InputError(f"the MS image {setup.ms.path} has no valid pixel under the PAN")
    return acc


def _pan_mean(setup: PairSetup, chosen: list[Window], readers: _Readers, workers: int
              ) -> float:
    """Mean of the valid PAN pixels of the sample tiles."""

    def summarise(win: Window) -> tuple[float, int]:
        raw = _read_pan(readers.get()[0], setup, win, 0)
        v = nodata_mask(raw[None], setup.pan.nodata)
        return float(raw[v].astype(np.float64).sum()), int(v.sum())

    psum, pn = 0.0, 0
    with closing(_ordered_map(summarise, chosen, workers)) as parts:
        for s, n in parts:
            psum += s
            pn += n
    if pn == 0:
        raise InputError(f"the PAN image {setup.pan.path} has no valid pixel over the MS")
    return psum / pn


# ----------------------------------------------------------------------------- fusion


@dataclass(frozen=True)
class FusionResult:
    """What :func:`pansharpen` did.

    Attributes:
        path: The fused GeoTIFF.
        method: ``hpf``, ``brovey`` or ``bilinear``.
        ratio: R = MS pixel size / PAN pixel size.
        params: HPF parameters (None for the other methods).
        weights: Per-band injection weights (HPF W_b) or Brovey weights.
        grid: Output grid.
        bands: Output band count.
        dtype: Output dtype.
        seconds: Wall time.
        stats_pixels: Output pixels the moment statistics were taken over.
    """

    path: Path
    method: Method
    ratio: float
    params: HPFParams | None
    weights: tuple[float, ...]
    grid: Grid
    bands: int
    dtype: str
    seconds: float
    stats_pixels: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "path": str(self.path), "method": self.method, "ratio": self.ratio,
            "params": None if self.params is None else asdict(self.params),
            "weights": list(self.weights), "shape": list(self.grid.shape), "bands": self.bands,
            "dtype": self.dtype, "seconds": self.seconds, "stats_pixels": self.stats_pixels,
        }


def pansharpen(
    pan_path: str | Path,
    ms_path: str | Path,
    out_path: str | Path,
    method: Method = "hpf",
    center: Center = "low",
    modulation: Modulation = "mid",
    second_pass: bool = False,
    histogram_match: bool = True,
    weights: Sequence[float] | None = None,
    tile: int = 1024,
    sample_pixels: int = STATS_SAMPLE_PIXELS,
    stats: FusionStats | None = None,
    workers: int = 0,
    nodata: float | None = None,
    compress: Compression = "deflate",
) -> FusionResult:
    """Pan-sharpen a PAN/MS raster pair into a GeoTIFF on the PAN grid, streaming.

    Args:
        pan_path: One-band panchromatic raster.
        ms_path: Multispectral raster (C bands), same CRS, overlapping, coarser pixels.
        out_path: Output GeoTIFF (written atomically).
        method: ``hpf`` (Gangkofner et al. 2008, default), ``brovey`` or ``bilinear``.
        center: HPF kernel centre level (``low`` default).
        modulation: HPF modulation level (``mid`` default).
        second_pass: Add the HPF 5 x 5 second pass (R >= 5.5 only).
        histogram_match: HPF linear histogram match (default on).
        weights: Brovey weights, one per MS band (least-squares fit when None).
        tile: Output tile size in pixels (a multiple of 256 keeps writes block-aligned).
        sample_pixels: Minimum output pixels for the moment statistics.
        stats: Precomputed statistics (skips the statistics pass; for tests and reruns).
        workers: Threads computing tiles while the main thread writes, and summarising the
            statistics sample (0: up to 4, by CPU count; 1: no threads). Tiles are written in
            order, at most ``2 * workers`` are in flight, so memory stays bounded.
        nodata: Nodata value of both images when their files lack the tag (``--nodata``).
        compress: Compression of the output COG: ``deflate`` (default, any reader) or ``zstd``
            (GDAL >= 2.3 and QGIS read it; about 4x less CPU to write, files about 8 %
            larger; same pixels), both at level :data:`OUTPUT_ZLEVEL`.

    Returns:
        A :class:`FusionResult`. The output has C bands of the MS dtype on the output grid,
        the MS band descriptions and the output nodata of :class:`PairSetup`.
    """
    t0 = time.perf_counter()
    if compress not in COMPRESSIONS:
        raise InputError(f"--compress must be one of {', '.join(COMPRESSIONS)}, got {compress!r}")
    setup, params = _check_request(pan_path, ms_path, method, center, modulation, second_pass,
                                   weights, tile, nodata)
    if stats is None:
        with gdal_env(GDAL_CACHE_MB):
            stats = compute_stats(setup, params, tile, sample_pixels, workers=workers)
    transform = make_transform(method, stats, params, histogram_match, weights)
    halo = params.halo if params is not None else 0
    dtype = np.dtype(setup.ms.dtype)
    global_stats = stats

    def fuse(pan_ds: Any, ms_ds: Any, win: Window) -> npt.NDArray[Any]:
        blk = _load_block(pan_ds, ms_ds, setup, win, halo, global_stats.pan_mean,
                          global_stats.ms_mean)
        out = fuse_block(method, blk, transform, params, dtype)
        apply_nodata(out, blk.valid, setup.nodata)
        return out

    _write_fused(setup, out_path, tile, workers, fuse, method, compress)
    seconds = time.perf_counter() - t0
    used = transform.weights if method == "brovey" else transform.w1
    log.info("fused %s x %s pixels, %d bands, with %s in %.1f s", setup.out_grid.height,
             setup.out_grid.width, setup.ms.count, method, seconds)
    return FusionResult(Path(out_path), method, setup.ratio, params, used, setup.out_grid,
                        setup.ms.count, dtype.name, seconds, stats.n)


def _check_request(pan_path: str | Path, ms_path: str | Path, method: Method, center: Center,
                   modulation: Modulation, second_pass: bool, weights: Sequence[float] | None,
                   tile: int, nodata: float | None = None) -> tuple[PairSetup, HPFParams | None]:
    """Check the pair and the options of :func:`pansharpen`; the HPF parameters when HPF.

    Raises:
        InputError: For a tile under 16 pixels or Brovey weights that do not fit.
    """
    if tile < 16:
        raise InputError(f"tile size must be at least 16 pixels, got {tile}")
    if weights is not None and method != "brovey":
        raise InputError("weights apply to --method brovey only")
    setup = check_pair(pan_path, ms_path, nodata)
    params = (hpf_parameters(setup.ratio, center, modulation, second_pass)
              if method == "hpf" else None)
    if weights is not None and len(weights) != setup.ms.count:
        raise InputError(f"Brovey needs one weight per MS band: the MS has {setup.ms.count} "
                         f"bands but {len(weights)} weights were given")
    return setup, params


def _write_fused(setup: PairSetup, out_path: str | Path, tile: int, workers: int,
                 fuse: Callable[[Any, Any, Window], npt.NDArray[Any]], method: Method,
                 compress: Compression = "deflate") -> None:
    """The fusion pass: ``fuse`` every output tile in worker threads, write them in order.

    Args:
        setup: From :func:`check_pair`.
        out_path: Output GeoTIFF (written atomically).
        tile: Output tile size in pixels.
        workers: Worker threads (0: up to 4, by CPU count; 1: no threads).
        fuse: (PAN dataset, MS dataset, output window) -> fused (C, h, w) in the output dtype.
        method: Method name, for the file's tag and the progress bar.
        compress: Compression of the output COG.
    """
    tiles = _tiles(setup.out_grid, tile)
    readers = _Readers(setup)

    def work(win: Window) -> tuple[Window, npt.NDArray[Any]]:
        pan_ds, ms_ds = readers.get()
        return win, fuse(pan_ds, ms_ds, win)

    n_workers = _worker_count(workers)
    # Unwound in reverse: the writer is closed, then the workers stop, then their datasets.
    with ExitStack() as stack:
        stack.callback(readers.close)
        results = stack.enter_context(closing(_ordered_map(work, tiles, n_workers)))
        stack.enter_context(gdal_env(GDAL_CACHE_MB, GDAL_NUM_THREADS="ALL_CPUS"))
        writer = stack.enter_context(RasterWriter(
            out_path, setup.out_grid, setup.ms.count, setup.ms.dtype, setup.nodata,
            setup.ms.descriptions, tags={"PANSHARPEN_METHOD": method}, zlevel=OUTPUT_ZLEVEL,
            prebuilt=True, compress=compress))
        for win, arr in track(results, len(tiles), f"pansharpen: {method}"):
            writer.write(arr, win)
