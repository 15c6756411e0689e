"""Whole-scene prediction: throughput, window trade-off and peak memory (issue 7).

Measures, in one run, with a width-16 ``unet`` from the registry (random weights saved as a
real model bundle) on a synthetic 4-band uint16 GeoTIFF generated here:

(a) end-to-end megapixels per second of ``predict_scene`` (read, normalise, predict, blend,
    write both GeoTIFFs, trace polygons) against the bare model forward pass over the same
    windows in the same batches (random input of the same shape); ratio = bare time / end-to-end
    time, target >= 0.85 without TTA. Runs are interleaved and the median is taken.
(b) the given default window against patch-sized windows (256, overlap 64) on the same scene:
    speed ratio and the max / mean absolute difference of the float32 probability maps, and
    the share of mask pixels that differ.
(c) peak RSS (``ru_maxrss`` of a child process running ``predict_scene``) for a fully
    predicted 4096 x 4096 scene and for a 16384 x 16384 scene whose top ``--data-rows`` rows
    hold data and the rest is nodata: every one of its 16384 rows is still read, blended,
    written and polygonised, but the model only runs on windows with data.
(d) optionally (``--sweep``) the end-to-end time of several window sizes on the same scene.

Usage::

    .venv/bin/python benchmarks/predict_throughput.py --size 2048 --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BANDS = ["blue", "green", "red", "nir"]


def make_bundle(folder: Path, width: int = 16) -> Path:
    """A width-``width`` U-Net with seeded random weights saved as a real bundle."""
    import torch

    from landslip.models.bundle import BundleMeta, save_bundle
    from landslip.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet", 4, width=width)
    meta = BundleMeta(model="unet", model_params={"width": width}, in_channels=4,
                      band_set="bgrn", band_names=BANDS, mean=[400.0, 500.0, 450.0, 1500.0],
                      std=[120.0, 130.0, 150.0, 400.0], threshold=0.5, patch_size=256)
    return save_bundle(folder / "run" / "bundle", model, meta)


def make_image(path: Path, size: int, data_rows: int | None = None) -> Path:
    """A synthetic 4-band uint16 scene (nodata 0), written in 256-row blocks.

    Rows at and below ``data_rows`` are left unwritten, so they read as nodata.
    """
    from rasterio.crs import CRS

    from landslip.grid import Grid, Window
    from landslip.io.raster import RasterWriter

    grid = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4740000.0, 1.5, size, size)
    rng = np.random.default_rng(0)
    coarse = rng.normal(0, 1, (4, size // 64 + 2, size // 64 + 2)).astype(np.float32)
    base = np.array([400, 500, 450, 1500], np.float32)[:, None, None]
    cols = np.arange(size)
    limit = size if data_rows is None else min(size, data_rows)
    with RasterWriter(path, grid, 4, "uint16", 0, BANDS) as w:
        for r0 in range(0, limit, 256):
            h = min(256, limit - r0)
            rows = np.arange(r0, r0 + h)
            # smooth field (nearest-upsampled coarse noise) + fine texture, always > 0
            block = coarse[:, rows[:, None] // 64, cols[None, :] // 64] * 150
            block += 40 * np.sin(rows[:, None] / 5.0) * np.cos(cols[None, :] / 7.0)
            w.write(np.clip(block + base, 1, 60000).astype(np.uint16), Window(r0, 0, h, size))
    return path


def bare_forward_seconds(bundle: Path, image: Path, window: int, overlap: int,
                         batch_size: int) -> tuple[float, int]:
    """Time the model alone over the windows predict_scene would run, in the same batches."""
    import torch

    from landslip.inference.sliding import make_plan
    from landslip.inference.stream import forward_probabilities, model_multiple
    from landslip.io.raster import raster_info
    from landslip.models.bundle import load_bundle

    b = load_bundle(bundle)
    info = raster_info(image)
    plan = make_plan(info.grid.height, info.grid.width, window, overlap,
                     model_multiple(b.model))
    per_row = len(plan.col_starts)
    sizes = [min(batch_size, per_row - k) for k in range(0, per_row, batch_size)]
    x = {n: np.random.default_rng(n).normal(0, 1, (n, 4, plan.win_h, plan.win_w))
         .astype(np.float32) for n in set(sizes)}
    t0 = time.perf_counter()
    for _ in plan.row_starts:
        for n in sizes:
            forward_probabilities(b.model, x[n], torch.device("cpu"))
    return time.perf_counter() - t0, plan.n_windows


def end_to_end(bundle: Path, image: Path, out: Path, window: int, overlap: int,
               batch_size: int, dtype: str = "uint8") -> Any:
    from landslip.inference.predict import predict_scene

    return predict_scene(bundle, image, out, window=window, overlap=overlap,
                         batch_size=batch_size, probability_dtype=dtype)  # type: ignore[arg-type]


def child_peak(args: argparse.Namespace, image: Path, bundle: Path, out: Path) -> dict[str, Any]:
    """Run predict_scene in a fresh interpreter and return its peak RSS and timings."""
    code = (
        f"import json, resource, sys, torch; torch.set_num_threads({args.threads});"
        "from landslip.inference.predict import predict_scene;"
        f"r = predict_scene(sys.argv[1], sys.argv[2], sys.argv[3], window={args.window},"
        f" overlap={args.overlap}, batch_size={args.batch_size});"
        "print(json.dumps(dict(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
        " / 1024, seconds=r.seconds, windows=r.plan.n_windows,"
        " skipped=r.stats.skipped, buffer_mb=r.stats.buffer_bytes / 2**20,"
        " polygons=r.n_polygons)))"
    )
    res = subprocess.run([sys.executable, "-c", code, str(bundle), str(image), str(out)],
                         check=True, capture_output=True, text=True)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def child_bare_peak(threads: int, win_h: int, win_w: int, batch: int) -> float:
    """Peak RSS (MB) of a fresh interpreter that imports the same libraries and runs one bare
    forward pass of a width-16 U-Net on a (batch, 4, win_h, win_w) input."""
    code = (
        "import resource, torch, rasterio, geopandas, scipy.ndimage;"
        "import landslip.inference.predict;"
        "from landslip.models.registry import create_model;"
        f"torch.set_num_threads({threads});"
        "m = create_model('unet', 4, width=16).eval();"
        "ctx = torch.inference_mode(); ctx.__enter__();"
        f"m(torch.zeros({batch}, 4, {win_h}, {win_w}));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048, help="scene size for (a), (b), (d)")
    p.add_argument("--window", type=int, default=1024)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--data-rows", type=int, default=2048)
    p.add_argument("--mem-sizes", type=int, nargs="*", default=[4096, 16384])
    p.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c"])
    p.add_argument("--bare-peaks-only", action="store_true",
                   help="in (c), only measure the bare forward pass of each scene's window")
    p.add_argument("--sweep", type=int, nargs="*", default=[],
                   help="window sizes to time end to end (d)")
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    tmp_ctx = tempfile.TemporaryDirectory(prefix="landslip-bench-", dir=args.workdir)
    tmp = Path(tmp_ctx.name)
    bundle = make_bundle(tmp)
    from landslip.models.bundle import load_bundle

    with torch.inference_mode():  # warm up the convolution kernels before any timing
        load_bundle(bundle).model(torch.zeros(1, 4, 256, 256))
    image = make_image(tmp / f"scene{args.size}.tif", args.size)
    mp = args.size**2 / 1e6
    print(f"torch {torch.__version__}, {args.threads} thread(s), scene {args.size}^2 = "
          f"{mp:.2f} MP, window {args.window} overlap {args.overlap} batch {args.batch_size}")
    results: dict[str, Any] = {}

    if "a" not in args.skip:
        e2e, bare = [], []
        for rep in range(args.reps):
            r = end_to_end(bundle, image, tmp / f"a{rep}", args.window, args.overlap,
                           args.batch_size)
            e2e.append(r.seconds)
            s, n = bare_forward_seconds(bundle, image, args.window, args.overlap,
                                        args.batch_size)
            bare.append(s)
        te, tb = statistics.median(e2e), statistics.median(bare)
        results["a"] = {"end_to_end_s": e2e, "bare_forward_s": bare, "windows": n,
                        "end_to_end_mp_s": mp / te, "bare_mp_s": mp / tb, "ratio": tb / te}
        print(f"(a) end-to-end {mp / te:.3f} MP/s ({te:.1f} s), bare forward over the same "
              f"{n} windows {mp / tb:.3f} MP/s ({tb:.1f} s): ratio {tb / te:.3f}  "
              f"[runs e2e {_fmt(e2e)} bare {_fmt(bare)}]")

    if "b" not in args.skip:
        td, tp = [], []
        for rep in range(args.reps):
            rd = end_to_end(bundle, image, tmp / f"bd{rep}", args.window, args.overlap,
                            args.batch_size, "float32")
            rp = end_to_end(bundle, image, tmp / f"bp{rep}", 256, 64, args.batch_size,
                            "float32")
            td.append(rd.seconds)
            tp.append(rp.seconds)
        from landslip.io.raster import read_raster

        pd_, _ = read_raster(rd.probability)
        pp, _ = read_raster(rp.probability)
        md, _ = read_raster(rd.mask)
        mpatch, _ = read_raster(rp.mask)
        diff = np.abs(pd_.astype(np.float64) - pp)
        ratio = statistics.median(tp) / statistics.median(td)
        results["b"] = {"default_s": td, "patch_s": tp, "speedup": ratio,
                        "max_abs_diff": float(np.nanmax(diff)),
                        "mean_abs_diff": float(np.nanmean(diff)),
                        "mask_disagreement": float(np.mean(md != mpatch)),
                        "windows_default": rd.plan.n_windows, "windows_patch": rp.plan.n_windows,
                        "recompute_default": rd.plan.recompute_factor,
                        "recompute_patch": rp.plan.recompute_factor}
        print(f"(b) window {args.window}/{args.overlap}: {statistics.median(td):.1f} s "
              f"({rd.plan.n_windows} windows of {rd.plan.win_h}, x{rd.plan.recompute_factor:.2f}"
              f" pixels) vs 256/64: {statistics.median(tp):.1f} s ({rp.plan.n_windows} windows,"
              f" x{rp.plan.recompute_factor:.2f}): speed-up {ratio:.2f}; probability max |diff| "
              f"{results['b']['max_abs_diff']:.2e}, mean {results['b']['mean_abs_diff']:.2e}; "
              f"mask pixels differing {results['b']['mask_disagreement']:.2e}")

    for w in args.sweep:
        r = end_to_end(bundle, image, tmp / f"d{w}", w, args.overlap, args.batch_size)
        results.setdefault("d", {})[w] = r.seconds
        print(f"(d) window {w} overlap {args.overlap}: {r.seconds:.1f} s, {mp / r.seconds:.3f} "
              f"MP/s, {r.plan.n_windows} windows of {r.plan.win_h}, recompute "
              f"x{r.plan.recompute_factor:.2f}")

    if "c" not in args.skip:
        from landslip.inference.sliding import make_plan

        for size in args.mem_sizes:
            plan = make_plan(size, size, args.window, args.overlap, 16)
            bare = child_bare_peak(args.threads, plan.win_h, plan.win_w, args.batch_size)
            print(f"(c) {size}^2: bare forward of one {plan.win_h} x {plan.win_w} window "
                  f"(batch {args.batch_size}): peak RSS {bare:.0f} MB")
            results.setdefault("c_bare", {})[size] = bare
            if args.bare_peaks_only:
                continue
            data_rows = None if size <= 4096 else args.data_rows
            img = make_image(tmp / f"mem{size}.tif", size, data_rows)
            res = child_peak(args, img, bundle, tmp / f"c{size}")
            res["data_rows"] = data_rows or size
            results.setdefault("c", {})[size] = res
            print(f"(c) {size}^2 (data in the top {res['data_rows']} rows): peak RSS "
                  f"{res['peak_rss_mb']:.0f} MB ({res['peak_rss_mb'] - bare:+.0f} MB over the "
                  f"bare forward), {res['seconds']:.1f} s, {res['windows']} windows "
                  f"({res['skipped']} all-nodata skipped), row buffer {res['buffer_mb']:.1f} MB")
            (tmp / f"mem{size}.tif").unlink()

    print(json.dumps(results, indent=1, default=str))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"benchmark process peak RSS {peak:.0f} MB")
    tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
