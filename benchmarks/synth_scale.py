"""Time and peak memory of ``make_scene`` against the scene size.

Each size runs in a fresh child process, so the peak resident set size (RSS) of one run does
not hide that of another. Memory should stay flat as the scene grows (block-wise
generation); time should grow with the pixel count. Ratios are against the smallest size,
measured in the same run.

Usage:
    .venv/bin/python benchmarks/synth_scale.py                # 2048 and 8192
    .venv/bin/python benchmarks/synth_scale.py --big          # also 16384
    .venv/bin/python benchmarks/synth_scale.py --sizes 512 2048
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _child(size: int, out: str, seed: int) -> None:
    import time

    from landslip.synthetic.scene import make_scene

    t0 = time.perf_counter()
    r = make_scene(out, size=size, seed=seed)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    disk = sum(p.stat().st_size for p in Path(out).iterdir()) / 2**20
    print(json.dumps({"size": size, "seconds": seconds, "rss_mb": rss_mb, "disk_mb": disk,
                      "landslides": r.landslide_count, "fraction": r.landslide_fraction}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[2048, 8192])
    ap.add_argument("--big", action="store_true", help="also run 16384 x 16384")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.out, args.seed)
        return
    sizes = list(args.sizes) + ([16384] if args.big else [])
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="synth-scale-"))
    try:
        for size in sizes:
            out = tmp / str(size)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--out", str(out),
                 "--seed", str(args.seed)],
                check=True, capture_output=True, text=True,
            )
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            shutil.rmtree(out, ignore_errors=True)
            r = rows[-1]
            print(f"size {size:6d} px ({size * 1.5 / 1000:5.1f} km): {r['seconds']:7.1f} s, "
                  f"peak RSS {r['rss_mb']:7.0f} MB, files {r['disk_mb']:7.1f} MB, "
                  f"{r['landslides']} landslides ({100 * r['fraction']:.2f} %)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = rows[0]
    print("\nrelative to the first size:")
    for r in rows:
        px = (r["size"] / ref["size"]) ** 2
        print(f"  {r['size']:6d}: pixels x{px:6.1f}, time x{r['seconds'] / ref['seconds']:6.1f} "
              f"(per pixel x{r['seconds'] / ref['seconds'] / px:4.2f}), "
              f"peak RSS x{r['rss_mb'] / ref['rss_mb']:4.2f}")


if __name__ == "__main__":
    main()
