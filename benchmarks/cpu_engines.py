"""CPU prediction engines: PyTorch default layout vs channels_last vs ONNX Runtime (issue 12).

Measures, in one run, with a width-16 ``unet`` and 4 bands (seeded random weights saved as a
real model bundle, exported to ONNX in memory as ``landslip predict`` would):

(a) one forward pass over a single 1024 x 1024 window (batch 1) at 1 and 2 threads, for
    ``torch`` in the default NCHW layout, ``torch`` channels_last (what ``TorchEngine`` does on
    the CPU) and ONNX Runtime (``OnnxEngine``): median seconds, speed ratio against the
    default layout, effective GFLOP/s (convolution FLOPs counted by torch's FlopCounterMode),
    and the largest probability difference from the default layout;
(b) per-pixel speed against the window size for each engine at one thread count: the forward
    pass over each window shape ``landslip predict`` would run for ``--window`` 256 ... 2048 on
    2048^2 and 16384^2 scenes, then per scene the speed per *scene* pixel (windows x forward
    time, so overlap recomputation counts) and the best ``--window`` per engine: the source of
    ``landslip.models.engine.DEFAULT_WINDOWS``, with
(c) optionally (``--memory``) the peak RSS of each engine on one window per size, in a child
    process: the other side of the window choice.

Engines are interleaved within every repetition (the median over repetitions is reported), so
the ratios compare runs made side by side. Nothing is asserted: the script prints figures.
The machine's load average is printed before and after, since a shared machine skews times.

Usage::

    .venv/bin/python benchmarks/cpu_engines.py              # the full measurement
    .venv/bin/python benchmarks/cpu_engines.py --skip-a --threads 2   # the window sweep only
    .venv/bin/python benchmarks/cpu_engines.py --skip-a --sweep --memory 1024 1152 1280 1536
    .venv/bin/python benchmarks/cpu_engines.py --quick      # small sizes, checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

BANDS = ["blue", "green", "red", "nir"]
Float = npt.NDArray[np.float32]


def make_bundle(folder: Path, width: int) -> Any:
    """A width-``width`` U-Net with seeded random weights, saved and loaded as a bundle."""
    import torch

    from landslip.models.bundle import BundleMeta, load_bundle, save_bundle
    from landslip.models.registry import create_model

    torch.manual_seed(0)
    meta = BundleMeta(model="unet", model_params={"width": width}, in_channels=4,
                      band_set="bgrn", band_names=BANDS, mean=[0.0] * 4, std=[1.0] * 4)
    save_bundle(folder / "bundle", create_model("unet", 4, width=width), meta)
    return load_bundle(folder)


def conv_gflop(bundle: Any, size: int) -> float:
    """GFLOP of one forward pass over a size x size window (counted at 64 px, scaled)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((1, 4, 64, 64))
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        bundle.model(x)
    return float(counter.get_total_flops()) * (size / 64) ** 2 / 1e9


def make_engines(bundle: Any, onnx_bytes: bytes, threads: int) -> dict[str, Any]:
    """The three engines at ``threads`` threads, each with its own copy of the network."""
    import copy

    from landslip.models.engine import OnnxEngine, TorchEngine

    return {
        "torch default": TorchEngine(copy.deepcopy(bundle.model), threads=threads,
                                     channels_last=False),
        "torch channels_last": TorchEngine(copy.deepcopy(bundle.model), threads=threads),
        "onnxruntime": OnnxEngine(onnx_bytes, threads=threads),
    }


def timed(engines: dict[str, Any], x: Float, reps: int,
          warm: bool = True) -> dict[str, tuple[float, Float]]:
    """Median seconds of ``probabilities(x)`` per engine (interleaved), with the last output."""
    import torch

    for e in engines.values() if warm else ():  # allocator, ORT's planning, oneDNN kernels
        e.probabilities(x)
    times: dict[str, list[float]] = {k: [] for k in engines}
    outs: dict[str, Float] = {}
    for _ in range(reps):
        for name, e in engines.items():
            if e.threads is not None and name.startswith("torch"):
                torch.set_num_threads(e.threads)  # process-wide: set again before each run
            t0 = time.perf_counter()
            outs[name] = e.probabilities(x)
            times[name].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), outs[k]) for k, v in times.items()}


def part_a(bundle: Any, onnx_bytes: bytes, size: int, threads: list[int], reps: int,
           log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Forward pass over one size x size window per engine and thread count."""
    gflop = conv_gflop(bundle, size)
    x = np.random.default_rng(0).standard_normal((1, 4, size, size)).astype(np.float32)
    log(f"\n(a) one {size} x {size} window, batch 1, {gflop:.0f} GFLOP per forward pass, "
        f"median of {reps}")
    log("| threads | engine | seconds | vs default layout | GFLOP/s | max |dp| vs default |")
    log("|---|---|---|---|---|---|")
    rows = []
    for n in threads:
        res = timed(make_engines(bundle, onnx_bytes, n), x, reps)
        base_t, base_p = res["torch default"]
        for name, (t, p) in res.items():
            diff = float(np.abs(p - base_p).max())
            rows.append({"threads": n, "engine": name, "seconds": t, "ratio": base_t / t,
                         "gflops": gflop / t, "max_diff": diff})
            log(f"| {n} | {name} | {t:.3f} | {base_t / t:.2f}x | {gflop / t:.0f} | "
                f"{diff:.1e} |")
    return rows


def part_b(bundle: Any, onnx_bytes: bytes, sizes: list[int], threads: int, reps: int,
           log: Callable[[str], None], scenes: list[int], overlap: int = 64,
           names: list[str] | None = None) -> list[dict[str, Any]]:
    """Per-pixel speed against the window size, per engine: raw and per scene pixel.

    For each requested window W and scene side S, ``make_plan(S, S, W, overlap)`` gives the
    windows ``landslip predict`` would run (their size rounded to the model's multiple and
    balanced over the scene, so several W can give the same plan); the forward pass over one
    window of that shape is timed per engine, and the scene speed is S^2 / (windows x that
    time): what the window choice costs end to end, overlap recomputation included. Every
    repetition runs all shapes and engines in turn (so a load change on a shared machine hits
    them alike); the fastest repetition is used (the least disturbed), the median is shown too.
    """
    from landslip.inference.sliding import make_plan

    engines = {k: v for k, v in make_engines(bundle, onnx_bytes, threads).items()
               if names is None or k in names}
    multiple = bundle.required_multiple
    shapes = sorted({(pl.win_h, pl.win_w) for s in scenes for w in sizes
                     for pl in [make_plan(s, s, w, overlap, multiple)]})
    inputs = {hw: np.random.default_rng(hw[0]).standard_normal((1, 4, *hw)).astype(np.float32)
              for hw in shapes}
    runs: dict[tuple[int, int], dict[str, list[float]]] = {
        hw: {k: [] for k in engines} for hw in shapes}
    for e in engines.values():  # warm-up
        e.probabilities(inputs[shapes[0]])
    for rep in range(reps):
        for hw in shapes:
            for name, (t, _) in timed(engines, inputs[hw], 1, warm=False).items():
                runs[hw][name].append(t)
        log(f"  repetition {rep + 1}/{reps} done")
    seconds = {hw: {k: min(v) for k, v in r.items()} for hw, r in runs.items()}
    log(f"\n(b) forward pass against window shape, batch 1, {threads} thread(s), fastest "
        f"(median) of {reps}, MP/s")
    log("| window | " + " | ".join(engines) + " |")
    log("|---|" + "---|" * len(engines))
    for (h, w), r in runs.items():
        log(f"| {h} x {w} | " + " | ".join(
            f"{h * w / 1e6 / min(v):.3f} ({h * w / 1e6 / statistics.median(v):.3f})"
            for v in r.values()) + " |")
    rows: list[dict[str, Any]] = []
    for side in scenes:
        log(f"\n(b) {side} x {side} scene, overlap {overlap}: scene MP/s = {side}^2 / "
            "(windows x forward seconds)")
        log("| --window | plan | windows | pixels computed | " +
            " | ".join(f"{k} scene MP/s" for k in engines) + " |")
        log("|---|---|---|---|" + "---|" * len(engines))
        for size in sizes:
            plan = make_plan(side, side, size, overlap, multiple)
            t = seconds[(plan.win_h, plan.win_w)]
            mps = {k: side * side / 1e6 / (plan.n_windows * v) for k, v in t.items()}
            rows.extend({"scene": side, "window": size, "plan": [plan.win_h, plan.win_w],
                         "windows": plan.n_windows, "engine": k, "scene_mp_per_s": v}
                        for k, v in mps.items())
            log(f"| {size} | {plan.win_h} x {plan.win_w} | {plan.n_windows} | "
                f"{plan.recompute_factor:.2f}x | " + " | ".join(f"{v:.3f}" for v in mps.values())
                + " |")
        for name in engines:
            mine = [r for r in rows if r["engine"] == name and r["scene"] == side]
            best = max(mine, key=lambda r: r["scene_mp_per_s"])
            close = [r["window"] for r in mine
                     if r["scene_mp_per_s"] >= 0.97 * best["scene_mp_per_s"]]
            log(f"best --window for {name} at {side}^2: {best['window']} "
                f"({best['scene_mp_per_s']:.3f} MP/s; within 3%: {close})")
    return rows


# VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork + exec, so the child would report the
# parent's peak when that is larger.
_PEAK = """
import sys, numpy as np
import landslip.inference.predict  # the libraries predict loads
from landslip.models.bundle import load_bundle
from landslip.models.engine import create_engine
engine = create_engine(load_bundle(sys.argv[1]), sys.argv[2], "cpu", int(sys.argv[3]))
x = np.zeros((1, 4, int(sys.argv[4]), int(sys.argv[5])), np.float32)
for _ in range(3):  # ONNX Runtime's arena reaches its steady size after a few runs
    engine.probabilities(x)
with open("/proc/self/status") as f:
    print(next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024)
"""


def part_c(bundle_dir: Path, shapes: list[tuple[int, int]], threads: int,
           log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Peak RSS (MB) of a fresh process running one engine on one window shape, 3 times.

    ``landslip predict`` adds its row buffers (about 0.4 GB at 16384 px wide) to this; the
    window default keeps the sum under 2 GB.
    """
    import subprocess
    import sys

    log(f"\n(c) peak RSS of a bare forward pass (3 runs, libraries of predict loaded), "
        f"{threads} thread(s), MB")
    log("| window | torch (channels_last) | onnx |")
    log("|---|---|---|")
    rows = []
    for h, w in shapes:
        peaks = {}
        for engine in ("torch", "onnx"):
            out = subprocess.run([sys.executable, "-c", _PEAK, str(bundle_dir), engine,
                                  str(threads), str(h), str(w)],
                                 check=True, capture_output=True, text=True).stdout
            peaks[engine] = float(out.strip().splitlines()[-1])
            rows.append({"window": [h, w], "engine": engine, "peak_rss_mb": peaks[engine]})
        log(f"| {h} x {w} | {peaks['torch']:.0f} | {peaks['onnx']:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small windows and one repetition: checks that the script runs")
    parser.add_argument("--width", type=int, default=16, help="U-Net base width")
    parser.add_argument("--size", type=int, default=1024, help="window of part (a), pixels")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts of part (a)")
    parser.add_argument("--sweep", type=int, nargs="*",
                        default=[256, 512, 768, 1024, 1152, 1280, 1536, 2048],
                        help="--window values of part (b) (none: skip it)")
    parser.add_argument("--scenes", type=int, nargs="*", default=[2048, 16384],
                        help="scene sides of part (b)'s per-scene-pixel speed")
    parser.add_argument("--skip-a", action="store_true", help="skip part (a)")
    parser.add_argument("--sweep-engines", nargs="*", default=None,
                        choices=["torch default", "torch channels_last", "onnxruntime"],
                        help="engines of part (b) (default: all three)")
    parser.add_argument("--sweep-threads", type=int, default=None,
                        help="threads of part (b) (default: the largest of --threads)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--memory", type=int, nargs="*", default=[],
                        help="window sides of part (c), peak RSS per engine (none: skip it)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.size, args.sweep, args.reps, args.scenes = 256, [128, 256], 1, [512]
    import onnxruntime
    import torch

    from landslip.models.export import export_onnx_bytes

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f} at start")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp) / "run", args.width)
        t0 = time.perf_counter()
        onnx_bytes = export_onnx_bytes(bundle)
        print(f"unet width {args.width}, 4 bands; ONNX export in memory "
              f"{time.perf_counter() - t0:.1f} s ({len(onnx_bytes) / 1e6:.1f} MB)")
        if args.memory:
            n = args.sweep_threads or max(args.threads)
            out["c"] = part_c(bundle.path, [(m, m) for m in args.memory], n, print)
    if not args.skip_a:
        out["a"] = part_a(bundle, onnx_bytes, args.size, args.threads, args.reps, print)
    if args.sweep:
        n = args.sweep_threads or max(args.threads)
        out["b"] = part_b(bundle, onnx_bytes, args.sweep, n, args.reps, print, args.scenes,
                          names=args.sweep_engines)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
