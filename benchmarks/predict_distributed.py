"""Prediction on a local dask.distributed cluster against the in-process run (issue 15).

On a synthetic ``--size`` x ``--size`` 4-band scene (default 4096; the bundle and image makers
of ``predict_throughput.py``: a width-16 ``unet``, ONNX Runtime on the CPU), interleaved over
``--reps`` repetitions (median):

* ``inproc2``: ``predict_scene`` in this process, engine with 2 threads;
* ``w1t1``: ``predict_many`` on a local cluster of 1 worker process, engine 1 thread;
* ``w2t1``: the same on 2 worker processes of 1 thread each.

The clusters are started once, outside the timings (``client=``); each timed run writes a
fresh OUT (no part is skipped) and includes the driver's checks, every strip task, the
assembly of the COGs and the polygons. Printed: seconds, and the ratios w1t1/w2t1 (speed-up;
target >= 1.6 on 2 idle cores) and w2t1/inproc2 (engine overhead; target <= 1.10). A strip
re-runs the window row above it (exact blending), so one scene of ``n`` window rows in strips
of ``k`` costs about ``(n + n/k - 1) / n`` of the in-process compute. The per-part overhead
is (t(strip_rows=1) - t(one strip)) / (parts - 1) on 1 worker (recompute included).

Usage::

    .venv/bin/python benchmarks/predict_distributed.py            # 4096^2
    .venv/bin/python benchmarks/predict_distributed.py --quick    # 1024^2: checks it runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from landslip.inference.distributed import ClusterOptions, predict_many
from landslip.inference.predict import PredictOptions, predict_scene
from predict_throughput import make_bundle, make_image


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    """Run the comparison and print figures and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--strip-rows", type=int, default=3,
                    help="window rows per strip of the w1t1/w2t1 runs")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    size = 1024 if a.quick else a.size
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = make_bundle(root / "b")
        image = make_image(root / "scene.tif", size)
        opts = PredictOptions(threads=1)
        runs: dict[str, list[float]] = {"inproc2": [], "w1t1": [], "w2t1": []}
        k = 0
        with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as c1, \
                Client(c1) as one, LocalCluster(n_workers=2, threads_per_worker=1,
                                                dashboard_address=None) as c2, \
                Client(c2) as two:
            for _ in range(a.reps):
                for name, client, workers in (("w1t1", one, 1), ("w2t1", two, 2)):
                    k += 1
                    out = root / f"o{k}"
                    runs[name].append(_timed(lambda c=client, w=workers, o=out: predict_many(
                        bundle, [image], o, opts,
                        ClusterOptions(workers=w, strip_rows=a.strip_rows), client=c)))
                k += 1
                runs["inproc2"].append(_timed(lambda o=root / f"o{k}": predict_scene(
                    bundle, image, o, threads=2)))
            big = ClusterOptions(workers=1, strip_rows=10_000)
            t_one = _timed(lambda: predict_many(bundle, [image], root / "p1", opts, big,
                                                client=one))
            s: list[Any] = []
            t_many = _timed(lambda: s.extend(predict_many(
                bundle, [image], root / "pn", opts, ClusterOptions(workers=1, strip_rows=1),
                client=one)))
        med = {n: statistics.median(v) for n, v in runs.items()}
        mp = size * size / 1e6
        for n, t in med.items():
            print(f"{n:8s} {t:8.2f} s  {mp / t:6.2f} MP/s  (runs: "
                  f"{', '.join(f'{x:.2f}' for x in runs[n])})")
        print(f"speed-up w1t1/w2t1      {med['w1t1'] / med['w2t1']:.2f}  (target >= 1.6)")
        print(f"overhead w2t1/inproc2   {med['w2t1'] / med['inproc2']:.2f}  (target <= 1.10)")
        parts = s[0].parts
        print(f"per-part overhead       {(t_many - t_one) / max(parts - 1, 1):.3f} s "
              f"({parts} parts of 1 window row vs 1 part, 1 worker)")


if __name__ == "__main__":
    main()
