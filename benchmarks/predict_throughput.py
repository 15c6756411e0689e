"""Whole-scene prediction: engines end to end, same map, peak memory, a whole 16384^2 scene.

Issue 12's figures, with a width-16 ``unet`` (seeded random weights saved as a real bundle,
with its ``model.onnx`` written by ``ensure_onnx`` as training does) on a synthetic 4-band
uint16 GeoTIFF generated here block by block (a smooth random field plus texture, nodata 0):

(a) in ONE run, interleaved (median of ``--reps``), ``--threads`` threads, a ``--size`` scene
    (default 2048 x 2048):
    * ``old``: today's torch path, ``TorchEngine(channels_last=False)`` (contiguous NCHW, what
      ``landslip predict`` ran before issue 12) with window 1024, through ``predict_image``;
    * ``new``: ``predict_scene`` with the defaults (``engine="auto"``: ONNX Runtime on the CPU,
      and that engine's default window);
    * ``bare``: ONNX Runtime's ``session.run`` alone over as many windows of the new plan's
      shape (random input), the forward-pass floor.
    Each end-to-end time includes loading the bundle and making the engine. Printed: seconds,
    MP/s and the ratios new/old (target >= 2.5) and bare/new (target >= 0.85).
(b) same map: the torch path (contiguous) and the onnx path on the new plan, float32
    probabilities: max |p_torch - p_onnx| (target < 1e-3) and the share of mask pixels that
    differ (target < 1e-5); also the in-memory export time (a bundle without ``model.onnx``).
(c) peak RSS of ``predict_scene`` (defaults, ``--threads``) in a child process on a
    ``--mem-size`` scene (default 16384 x 16384) whose top ``--data-rows`` rows hold data and
    the rest is nodata: every row is still read, blended, written and polygonised, the model
    only runs on windows with data (target < 2 GB).
(d) ``--full-16k``, alone: a whole ``--full-size`` (default 16384 x 16384) scene with data
    everywhere, predicted end to end in a child process (the progress of each window row is
    printed): wall time, peak RSS, windows, polygons. Takes 5-10 minutes on 2 idle cores.

Usage::

    .venv/bin/python benchmarks/predict_throughput.py                 # (a), (b), (c)
    .venv/bin/python benchmarks/predict_throughput.py --skip c        # (a), (b) only
    .venv/bin/python benchmarks/predict_throughput.py --full-16k      # (d)
    .venv/bin/python benchmarks/predict_throughput.py --quick         # small: checks it runs
"""

from __future__ import annotations

import argparse
import json
import os
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
MEAN = [400.0, 500.0, 450.0, 1500.0]
STD = [120.0, 130.0, 150.0, 400.0]
NOISE = 1.0
"""Standard deviation of the pixel noise on the synthetic scene (raw units)."""
LANDSLIDE_SHARE = 0.03
"""Share of landslide pixels the benchmark model predicts on the synthetic scene."""
OLD_WINDOW = 1024
"""``--window`` default before issue 12."""


def make_bundle(folder: Path, width: int = 16, onnx_file: bool = True) -> Path:
    """A width-``width`` U-Net with seeded random weights saved as a real bundle.

    With ``onnx_file`` the bundle also gets its ``model.onnx`` (as training writes it).
    """
    import torch

    from landslip.models.bundle import BundleMeta, save_bundle
    from landslip.models.export import ensure_onnx
    from landslip.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet", 4, width=width).eval()
    fit_head(model)
    meta = BundleMeta(model="unet", model_params={"width": width}, in_channels=4,
                      band_set="bgrn", band_names=BANDS, mean=MEAN, std=STD, threshold=0.5,
                      patch_size=256)
    path = save_bundle(folder / "run" / "bundle", model, meta)
    if onnx_file:
        ensure_onnx(path)
    return path


class SceneBlocks:
    """Blocks of a synthetic 4-band scene (raw uint16-like values, float32), made on demand.

    A coarse random field (one value per 64 px cell, bilinearly interpolated), a faint sine
    texture and a little noise. Each block is computed on its own, so a 16384^2 scene is cheap
    to write; the smooth field gives the benchmark model blob-shaped landslides (a few hundred
    per 2048^2, as in a dense real inventory) rather than speckle.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.coarse = self.rng.normal(0, 1, (4, size // 64 + 2, size // 64 + 2)).astype(
            np.float32)
        self.base = np.array(MEAN, np.float32)[:, None, None]
        self.x0, self.fx = self._axis(np.arange(size))

    @staticmethod
    def _axis(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = i / 64.0
        lo = np.floor(pos).astype(np.int64)
        return lo, (pos - lo).astype(np.float32)

    def field(self, r0: int, h: int) -> np.ndarray:
        """The smooth part of rows ``r0 .. r0 + h``: float32 (4, h, size), unit variance."""
        y0, fy = self._axis(np.arange(r0, r0 + h))
        x0, fx = self.x0, self.fx
        c = self.coarse
        top = c[:, y0][:, :, x0] * (1 - fx) + c[:, y0][:, :, x0 + 1] * fx
        bottom = c[:, y0 + 1][:, :, x0] * (1 - fx) + c[:, y0 + 1][:, :, x0 + 1] * fx
        return np.asarray(top * (1 - fy)[:, None] + bottom * fy[:, None], dtype=np.float32)

    def block(self, r0: int, h: int) -> np.ndarray:
        """Rows ``r0 .. r0 + h`` of the scene, float32 (4, h, size), all > 0."""
        block = self.field(r0, h) * 150
        block += self.rng.normal(0, NOISE, (1, h, self.size)).astype(np.float32)
        return np.clip(block + self.base, 1, 60000)


def fit_head(model: Any, side: int = 256) -> None:
    """Make the random network's output look like a trained one's: up-sampling without a
    checkerboard, and the 1x1 output layer refitted so that its logit follows the smooth field
    of the first band (least squares on a sample scene), with a spread of about 3 logits and
    :data:`LANDSLIDE_SHARE` of the sample above 0: landslides come out as blobs, as a trained
    model's do, rather than the speckle of random weights."""
    import torch

    with torch.no_grad():  # equal taps: the 2x2 transposed convolutions up-sample without
        for m in model.modules():  # the checkerboard that speckles a random network's output
            if isinstance(m, torch.nn.ConvTranspose2d):
                m.weight.copy_(m.weight.mean(dim=(2, 3), keepdim=True).expand_as(m.weight))
    scene = SceneBlocks(side, seed=99)
    x = scene.block(0, side) - np.array(MEAN, np.float32)[:, None, None]
    x /= np.array(STD, np.float32)[:, None, None]
    target = scene.field(0, side)[0].ravel()
    feats: list[torch.Tensor] = []
    hook = model.head.register_forward_hook(lambda m, i, o: feats.append(i[0]))
    with torch.inference_mode():
        model(torch.from_numpy(x[None]))
    hook.remove()
    f = feats[0][0].reshape(feats[0].shape[1], -1).T.double().numpy()
    a = np.hstack([f, np.ones((f.shape[0], 1))])
    coef = np.linalg.lstsq(a, target, rcond=None)[0]
    fit = a @ coef
    scale = 3.0 / fit.std()
    shift = np.quantile(fit * scale, 1 - LANDSLIDE_SHARE)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(coef[:-1] * scale).float().view_as(
            model.head.weight))
        model.head.bias.fill_(float(coef[-1] * scale - shift))


def make_image(path: Path, size: int, data_rows: int | None = None, seed: int = 0) -> Path:
    """A synthetic 4-band uint16 scene (nodata 0, :class:`SceneBlocks`), in 256-row blocks.

    Rows at and below ``data_rows`` are left unwritten, so they read as nodata.
    """
    from rasterio.crs import CRS

    from landslip.grid import Grid, Window
    from landslip.io.raster import RasterWriter

    grid = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4740000.0, 1.5, size, size)
    scene = SceneBlocks(size, seed)
    limit = size if data_rows is None else min(size, data_rows)
    with RasterWriter(path, grid, 4, "uint16", 0, BANDS) as w:
        for r0 in range(0, limit, 256):
            h = min(256, limit - r0)
            w.write(scene.block(r0, h).astype(np.uint16), Window(r0, 0, h, size))
    return path


def run_old(bundle: Path, image: Path, out: Path, threads: int, window: int,
            dtype: str = "uint8") -> Any:
    """Today's torch path: contiguous-layout TorchEngine, ``window``, through predict_image."""
    from landslip.inference.predict import PredictOptions, match_bands, predict_image
    from landslip.inference.stream import InputSpec
    from landslip.io.raster import raster_info
    from landslip.models.bundle import load_bundle
    from landslip.models.engine import TorchEngine

    info = raster_info(image)
    b = load_bundle(bundle)
    spec = InputSpec(b.band_set, match_bands(info, b.band_set), tuple(b.mean), tuple(b.std),
                     info.nodata)
    opts = PredictOptions(threshold=b.threshold, window=window,
                          probability_dtype=dtype)  # type: ignore[arg-type]
    with TorchEngine(b.model, threads=threads, channels_last=False) as engine:
        return predict_image(engine, spec, image, out, opts)


def run_new(bundle: Path, image: Path, out: Path, threads: int, engine: str = "auto",
            window: int | None = None, dtype: str = "uint8") -> Any:
    """``predict_scene`` with the defaults (or the given engine and window)."""
    from landslip.inference.predict import predict_scene

    return predict_scene(bundle, image, out, threads=threads, engine=engine, window=window,
                         probability_dtype=dtype)  # type: ignore[arg-type]


def bare_ort_seconds(bundle: Path, plan: Any, threads: int) -> float:
    """ONNX Runtime's ``session.run`` alone over ``plan.n_windows`` windows (batch 1)."""
    from landslip.models.engine import OnnxEngine

    engine = OnnxEngine(bundle / "model.onnx", threads=threads)
    x = np.random.default_rng(1).normal(0, 1, (1, 4, plan.win_h, plan.win_w)).astype(np.float32)
    engine.session.run(None, {"input": x})  # warm-up, as predict's first window is
    t0 = time.perf_counter()
    for _ in range(plan.n_windows):
        engine.session.run(None, {"input": x})
    return time.perf_counter() - t0


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = fn(*args, **kwargs)
    return time.perf_counter() - t0, r


def part_a(args: argparse.Namespace, bundle: Path, image: Path, tmp: Path) -> dict[str, Any]:
    """Old torch path vs the new default vs bare ONNX Runtime, interleaved."""
    mp = args.size**2 / 1e6
    times: dict[str, list[float]] = {"old": [], "new": [], "bare": []}
    new = old = None
    for rep in range(args.reps):
        t, old = timed(run_old, bundle, image, tmp / f"old{rep}", args.threads, OLD_WINDOW)
        times["old"].append(t)
        t, new = timed(run_new, bundle, image, tmp / f"new{rep}", args.threads)
        times["new"].append(t)
        times["bare"].append(bare_ort_seconds(bundle, new.plan, args.threads))
        print(f"  rep {rep + 1}: old {times['old'][-1]:.2f} s, new {times['new'][-1]:.2f} s, "
              f"bare {times['bare'][-1]:.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    assert new is not None and old is not None
    print(f"(a) {args.size}^2 scene, {args.threads} thread(s), median of {args.reps}:")
    print("| path | engine | window (plan) | windows | seconds | MP/s |")
    print("|---|---|---|---|---|---|")
    for key, r, label in (("old", old, "torch, contiguous NCHW"),
                          ("new", new, f"{new.engine} (auto)"),
                          ("bare", new, "onnxruntime session.run only")):
        win = OLD_WINDOW if key == "old" else r.plan.win_h
        print(f"| {key} | {label} | {win} ({r.plan.win_h} x {r.plan.win_w}) | "
              f"{r.plan.n_windows} | {med[key]:.2f} | {mp / med[key]:.3f} |")
    ratios = {"new_vs_old": med["old"] / med["new"], "bare_vs_new": med["bare"] / med["new"]}
    print(f"new / old speed: {ratios['new_vs_old']:.2f}x (target >= 2.5); new / bare ONNX "
          f"Runtime: {ratios['bare_vs_new']:.3f} (target >= 0.85)")
    return {"seconds": times, "median": med, "ratios": ratios,
            "new_window": [new.plan.win_h, new.plan.win_w], "new_engine": new.engine,
            "windows": {"old": old.plan.n_windows, "new": new.plan.n_windows}}


def part_b(args: argparse.Namespace, bundle: Path, image: Path, tmp: Path) -> dict[str, Any]:
    """Torch (contiguous) and onnx maps on the same plan: probabilities and masks."""
    from landslip.io.raster import read_raster

    onnx = run_new(bundle, image, tmp / "b_onnx", args.threads, dtype="float32")
    window = onnx.plan.win_h if onnx.plan.win_h == onnx.plan.win_w else None
    torch_r = run_old(bundle, image, tmp / "b_torch", args.threads,
                      window or max(onnx.plan.win_h, onnx.plan.win_w), "float32")
    if (torch_r.plan.win_h, torch_r.plan.win_w) != (onnx.plan.win_h, onnx.plan.win_w):
        print("(b) warning: the two plans differ; the difference includes window effects")
    p_t, p_o = read_raster(torch_r.probability)[0][0], read_raster(onnx.probability)[0][0]
    m_t, m_o = read_raster(torch_r.mask)[0][0], read_raster(onnx.mask)[0][0]
    both = ~np.isnan(p_t) & ~np.isnan(p_o)
    diff = float(np.abs(p_t[both].astype(np.float64) - p_o[both]).max())
    differing = int(np.count_nonzero(m_t != m_o))
    share = differing / m_t.size
    t_export = export_seconds(bundle)
    print(f"(b) same plan ({onnx.plan.win_h} x {onnx.plan.win_w}, {onnx.plan.n_windows} "
          f"windows): max |p_torch - p_onnx| {diff:.2e} (target < 1e-3); mask pixels "
          f"differing {differing} of {m_t.size} = {share:.2e} (target < 1e-5); landslide "
          f"share {float(np.mean(m_o == 1)):.3f}, {onnx.n_polygons} polygons")
    print(f"    in-memory ONNX export (a bundle without model.onnx): {t_export:.2f} s")
    return {"max_prob_diff": diff, "mask_differing": differing, "mask_share": share,
            "export_seconds": t_export}


def export_seconds(bundle: Path) -> float:
    """Time of the in-memory export predict makes when the bundle has no model.onnx."""
    from landslip.models.bundle import load_bundle
    from landslip.models.export import export_onnx_bytes

    b = load_bundle(bundle)
    t0 = time.perf_counter()
    export_onnx_bytes(b)
    return time.perf_counter() - t0


# Peak memory of a child is its VmHWM: ``ru_maxrss`` of RUSAGE_SELF survives fork + exec on
# Linux, so a child would report this (large) benchmark process's peak instead of its own.
_CHILD = """
import json, sys, time
def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
import landslip.inference.stream as stream
from landslip.inference.predict import predict_scene
progress = sys.argv[4] == "1"
def track(items, total=None, description=""):
    t0 = time.perf_counter()
    for i, item in enumerate(items, start=1):
        yield item
        if progress and (i == total or i % max(1, (total or 1) // 50) == 0):
            dt = time.perf_counter() - t0
            eta = dt / i * ((total or i) - i)
            rss = peak_mb()
            print(f"  {description}: {i}/{total} batches, {dt:.0f} s, ETA {eta:.0f} s, "
                  f"peak RSS {rss:.0f} MB", flush=True)
stream.track = track
import landslip.inference.predict as predict
polygonize = predict.polygonize_mask
def traced(*args, **kwargs):
    t1 = time.perf_counter()
    if progress:
        print("  tracing polygons ...", flush=True)
    out = polygonize(*args, **kwargs)
    if progress:
        print(f"  polygons traced in {time.perf_counter() - t1:.0f} s", flush=True)
    return out
predict.polygonize_mask = traced
t0 = time.perf_counter()
r = predict_scene(sys.argv[1], sys.argv[2], sys.argv[3], threads=int(sys.argv[5]))
print(json.dumps(dict(peak_rss_mb=peak_mb(),
    seconds=time.perf_counter() - t0, predict_seconds=r.seconds,
    model_seconds=r.stats.model_seconds, windows=r.plan.n_windows,
    window=[r.plan.win_h, r.plan.win_w], skipped=r.stats.skipped, engine=r.engine,
    threads=r.threads, buffer_mb=r.stats.buffer_bytes / 2**20, polygons=r.n_polygons,
    landslide_pixels=r.landslide_pixels, valid_pixels=r.valid_pixels)))
"""


def child_predict(bundle: Path, image: Path, out: Path, threads: int,
                  progress: bool) -> dict[str, Any]:
    """Run ``predict_scene`` (defaults) in a fresh interpreter; its report and peak RSS."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(bundle), str(image), str(out),
                             "1" if progress else "0", str(threads)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        if line.startswith("  "):
            print(line.rstrip(), flush=True)
        last = line
    if proc.wait() != 0:
        raise SystemExit(f"the prediction child failed with exit code {proc.returncode}")
    return dict(json.loads(last))


def part_c(args: argparse.Namespace, bundle: Path, tmp: Path) -> dict[str, Any]:
    """Peak RSS of predict on a big scene with data in the top rows only."""
    t0 = time.perf_counter()
    img = make_image(tmp / "mem.tif", args.mem_size, args.data_rows)
    made = time.perf_counter() - t0
    res = child_predict(bundle, img, tmp / "c", args.threads, progress=False)
    print(f"(c) {args.mem_size}^2 (data in the top {args.data_rows} rows; scene written in "
          f"{made:.0f} s): peak RSS {res['peak_rss_mb']:.0f} MB (target < 2048), "
          f"{res['seconds']:.1f} s, {res['windows']} windows of {res['window']} "
          f"({res['skipped']} all-nodata skipped), {res['engine']}, row buffer "
          f"{res['buffer_mb']:.0f} MB")
    img.unlink()
    return res


def full_scene(args: argparse.Namespace, bundle: Path, tmp: Path) -> dict[str, Any]:
    """(d): a whole scene with data everywhere, end to end, with progress."""
    size = args.full_size
    print(f"(d) writing a {size} x {size} 4-band uint16 scene ...", flush=True)
    t0 = time.perf_counter()
    img = make_image(tmp / "full.tif", size)
    print(f"    written in {time.perf_counter() - t0:.0f} s "
          f"({img.stat().st_size / 2**20:.0f} MB); predicting ...", flush=True)
    res = child_predict(bundle, img, tmp / "d", args.threads, progress=True)
    km = size * 1.5 / 1000
    print(f"(d) {size}^2 = {size**2 / 1e6:.0f} MP ({km:.1f} km at 1.5 m), every window with "
          f"data: {res['seconds']:.0f} s wall ({res['seconds'] / 60:.1f} min; "
          f"{size**2 / 1e6 / res['seconds']:.2f} MP/s; model {res['model_seconds']:.0f} s), "
          f"peak RSS {res['peak_rss_mb']:.0f} MB, {res['windows']} windows of {res['window']}, "
          f"{res['engine']} with {res['threads']} thread(s), {res['polygons']} polygons "
          f"({res['landslide_pixels'] / max(1, res['valid_pixels']):.3f} of the pixels)")
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048, help="scene side of (a) and (b)")
    p.add_argument("--width", type=int, default=16, help="U-Net base width")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--mem-size", type=int, default=16384, help="scene side of (c)")
    p.add_argument("--data-rows", type=int, default=2048, help="rows with data in (c)")
    p.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c"])
    p.add_argument("--full-16k", action="store_true", help="run (d) only")
    p.add_argument("--full-size", type=int, default=16384, help="scene side of (d)")
    p.add_argument("--quick", action="store_true", help="small sizes: checks that it runs")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--workdir", type=Path, default=None, help="folder for temporary files")
    args = p.parse_args()
    if args.quick:
        args.size, args.reps, args.mem_size, args.data_rows, args.full_size = \
            512, 1, 2048, 512, 1024
    import onnxruntime
    import torch

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPU(s), {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="landslip-bench-", dir=args.workdir) as name:
        tmp = Path(name)
        bundle = make_bundle(tmp, args.width)
        if args.full_16k:
            results["d"] = full_scene(args, bundle, tmp)
        else:
            image = make_image(tmp / "scene.tif", args.size)
            if "a" not in args.skip:
                results["a"] = part_a(args, bundle, image, tmp)
            if "b" not in args.skip:
                results["b"] = part_b(args, bundle, image, tmp)
            if "c" not in args.skip:
                results["c"] = part_c(args, bundle, tmp)
    print(f"load average {os.getloadavg()[0]:.2f} at the end; benchmark process peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
