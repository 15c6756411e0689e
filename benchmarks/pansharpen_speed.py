"""Pan-sharpening throughput and peak memory: landslip (hpf, brovey) versus GDAL gdal_pansharpen.

Generates a PAN (uint16, 1.5 m) and a 4-band MS (uint16, 6 m) GeoTIFF pair in EPSG:32654 for
each PAN size with a cheap streaming generator (smooth structures plus noise), then fuses the
same inputs with ``landslip pansharpen`` (HPF by default; it computes tiles in up to 4
threads and compresses in GDAL threads) and with GDAL's ``gdal_pansharpen.py`` (weighted
Brovey, its default cubic resampling), once with GDAL's defaults (one thread) and once with
``-threads ALL_CPUS`` and multi-threaded compression; every run in its own subprocess, round
robin, same machine, same run. Both write tiled DEFLATE GeoTIFFs with predictor 2; landslip at
DEFLATE level :data:`~landslip.spectral.fusion.OUTPUT_ZLEVEL`, GDAL at its default level
unless ``--gdal-zlevel`` says otherwise. Reports the best wall time of each tool, megapixels
per second (PAN pixels), CPU time, the peak resident memory of each run (``ru_maxrss`` of the
child process, largest over the runs) and the ratio GDAL wall time / landslip wall time.

Usage:
    .venv/bin/python benchmarks/pansharpen_speed.py [--sizes 4096 16384] [--workdir DIR]
        [--methods hpf brovey] [--repeat N] [--gdal-zlevel N] [--variant NAME=SRC ...]
        [--compress deflate zstd]

landslip runs as ``python -m landslip.cli`` with this interpreter (and its PYTHONPATH), so a
checkout's sources can be measured with ``PYTHONPATH=src``; ``--variant NAME=SRC`` adds the
same landslip runs from another source tree (for example ``git worktree add /tmp/b BRANCH``,
then ``--variant b=/tmp/b/src``), interleaved with the others in the same run.

GDAL is skipped with a message when ``gdal_pansharpen.py`` is not installed
(Debian: ``apt-get install gdal-bin python3-gdal``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from landslip.grid import Grid, Window
from landslip.io.raster import RasterWriter
from landslip.spectral.fusion import OUTPUT_ZLEVEL

_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "dt = time.perf_counter() - t\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'rc': p.returncode, 'seconds': dt, 'maxrss_kb': r.ru_maxrss,\n"
    "                  'cpu_s': r.ru_utime + r.ru_stime, 'stderr': p.stderr[-2000:]}))\n"
)


def _field(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """A cheap smooth 'landscape' evaluated at map coordinates (metres), float32."""
    y = rows[:, None].astype(np.float32)
    x = cols[None, :].astype(np.float32)
    f: np.ndarray = (np.sin(x / 97.0 + seed) * np.cos(y / 131.0) * 600.0
         + np.sin((x + y) / 23.0) * 150.0
         + ((np.floor(x / 40.0) + np.floor(y / 55.0)) % 3) * 120.0)
    return f.astype(np.float32)


def make_pair(workdir: Path, size: int) -> tuple[Path, Path]:
    """Write PAN (size x size, 1.5 m) and MS (4 x size/4 x size/4, 6 m), streamed in strips."""
    crs = CRS.from_epsg(32654)
    x0, y0 = 500000.0, 4760000.0
    pan_path, ms_path = workdir / f"pan_{size}.tif", workdir / f"ms_{size}.tif"
    rng = np.random.default_rng(size)
    strip = 1024
    if not pan_path.exists():
        grid = Grid.from_bounds(crs, x0, y0, 1.5, size, size)
        cols = (np.arange(size) + 0.5) * 1.5
        with RasterWriter(pan_path, grid, 1, "uint16") as w:
            for r in range(0, size, strip):
                rows = (np.arange(r, r + strip) + 0.5) * 1.5
                f = 2000.0 + _field(rows, cols, 0) + rng.normal(0, 40, (strip, size))
                w.write(np.clip(f, 1, 65535).astype(np.uint16)[None], Window(r, 0, strip, size))
    if not ms_path.exists():
        m = size // 4
        grid = Grid.from_bounds(crs, x0, y0, 6.0, m, m)
        cols = (np.arange(m) + 0.5) * 6.0
        with RasterWriter(ms_path, grid, 4, "uint16",
                          descriptions=("blue", "green", "red", "nir")) as w:
            for r in range(0, m, strip):
                n = min(strip, m - r)
                rows = (np.arange(r, r + n) + 0.5) * 6.0
                base = _field(rows, cols, 0)
                bands = [1500 + 0.8 * base, 1700 + 0.9 * base, 1600 + base,
                         2500 + 0.5 * base + 300 * np.sin(rows[:, None] / 300.0)]
                arr = np.stack([b + rng.normal(0, 20, (n, m)) for b in bands])
                w.write(np.clip(arr, 1, 65535).astype(np.uint16), Window(r, 0, n, m))
    return pan_path, ms_path


def measure(cmd: list[str], env: dict[str, str] | None = None
            ) -> dict[str, float | int | str]:
    """Run ``cmd`` in a fresh wrapper process (environment ``env``, None: this one's); wall
    time, CPU time and the child's peak RSS."""
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], capture_output=True,
                         text=True, check=True, env=env)
    result: dict[str, float | int | str] = json.loads(out.stdout)
    return result


Run = tuple[str, list[str], dict[str, str] | None]


def _runs(args: argparse.Namespace, workdir: Path, size: int, pan: Path, ms: Path,
          gdal: str | None) -> list[Run]:
    """(name, command, environment) of every run at one size: landslip per method (and per
    ``--variant``), then GDAL twice."""
    variants: list[tuple[str, dict[str, str] | None]] = [("", None)]
    for v in args.variant:
        tag, _, src = v.partition("=")
        variants.append((f" [{tag}]", {**os.environ, "PYTHONPATH": src}))
    runs: list[Run] = [
        (f"landslip {m}{'' if c == 'deflate' else ' ' + c}{tag}",
         [sys.executable, "-m", "landslip.cli", "-q", "pansharpen", str(pan), str(ms), "-o",
          str(workdir / f"out_{m}{c}{tag.strip(' []')}_{size}.tif"), "--method", m,
          "--compress", c], env)
        for tag, env in variants for m in args.methods for c in args.compress
    ]
    if gdal is None:
        return runs
    co = ["-of", "GTiff", "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2",
          "-co", "BIGTIFF=IF_SAFER"]
    if args.gdal_zlevel is not None:
        co += ["-co", f"ZLEVEL={args.gdal_zlevel}"]
    runs.append((GDAL_1, [gdal, "-q", str(pan), str(ms), str(workdir / f"out_gdal_{size}.tif"),
                          *co], None))
    runs.append((GDAL_T, [gdal, "-q", "-threads", "ALL_CPUS", "--config", "GDAL_NUM_THREADS",
                          "ALL_CPUS", str(pan), str(ms),
                          str(workdir / f"out_gdalthreads_{size}.tif"), *co], None))
    if "zstd" in args.compress:  # like for like: GDAL's best setting with ZSTD level 1 too
        zco = ["-of", "GTiff", "-co", "TILED=YES", "-co", "COMPRESS=ZSTD", "-co", "ZSTD_LEVEL=1",
               "-co", "PREDICTOR=2", "-co", "BIGTIFF=IF_SAFER"]
        runs.append((GDAL_T + " zstd", [gdal, "-q", "-threads", "ALL_CPUS", "--config",
                                        "GDAL_NUM_THREADS", "ALL_CPUS", str(pan), str(ms),
                                        str(workdir / f"out_gdalzstd_{size}.tif"), *zco], None))
    return runs


GDAL_1 = "gdal_pansharpen"
GDAL_T = "gdal_pansharpen -threads"


def _bench_size(args: argparse.Namespace, workdir: Path, size: int, gdal: str | None
                ) -> dict[str, tuple[float, float, float]]:
    """Best wall time, peak RSS (MiB, largest over the runs) and CPU s of each tool."""
    t = time.perf_counter()
    pan, ms = make_pair(workdir, size)
    print(f"inputs {size} x {size} ready in {time.perf_counter() - t:.1f} s")
    mpx = size * size / 1e6
    runs = _runs(args, workdir, size, pan, ms, gdal)
    repeat = args.repeat if args.repeat else (3 if size <= 4096 else 1)
    best: dict[str, tuple[float, float, float]] = {}
    for rep in range(repeat):  # round robin, so load changes hit every tool alike
        for name, cmd, env in runs:
            r = measure(cmd, env)
            if r["rc"] != 0:
                print(f"{name} failed (rc {r['rc']}): {r['stderr']}")
                continue
            sec, rss, cpu = float(r["seconds"]), int(r["maxrss_kb"]) / 1024, float(r["cpu_s"])
            print(f"  {size:>6} {name:<26} run {rep + 1}: {sec:7.2f} s "
                  f"{mpx / sec:7.2f} Mpx/s peak RSS {rss:6.0f} MiB cpu {cpu:6.1f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
            prev = best.get(name)
            best[name] = (min(sec, prev[0]) if prev else sec, max(rss, prev[1] if prev else 0.0),
                          cpu if prev is None or sec < prev[0] else prev[2])
            for out in workdir.glob(f"out_*_{size}.tif"):
                out.unlink()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--methods", nargs="+", default=["hpf"],
                        help="landslip methods to run (hpf, brovey, bilinear; default hpf)")
    parser.add_argument("--repeat", type=int, default=0,
                        help="runs per tool, best kept (default 3 up to 4096 px, else 1)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SRC",
                        help="also run landslip from another source tree (PYTHONPATH=SRC), "
                             "round robin with the others, e.g. a checkout of another branch")
    parser.add_argument("--compress", nargs="+", default=["deflate"], choices=["deflate", "zstd"],
                        help="landslip --compress values to run (with zstd, GDAL -threads "
                             "also runs with ZSTD level 1)")
    parser.add_argument("--gdal-zlevel", type=int, default=None,
                        help="DEFLATE level for GDAL's output (default: GDAL's, 6); landslip "
                             f"writes level {OUTPUT_ZLEVEL}")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="landslip-ps-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    gdal = shutil.which("gdal_pansharpen.py") or shutil.which("gdal_pansharpen")
    if gdal is None:
        print("gdal_pansharpen not found: GDAL column skipped (Debian: apt-get install "
              "gdal-bin python3-gdal)")
    print(f"workdir {workdir}; {os.cpu_count()} CPUs; landslip writes DEFLATE level "
          f"{OUTPUT_ZLEVEL}, GDAL level {args.gdal_zlevel or 'default (6)'}, both predictor 2")
    results = {size: _bench_size(args, workdir, size, gdal) for size in args.sizes}
    print()
    print(f"best of the runs (load average now {os.getloadavg()[0]:.1f})")
    print(f"{'PAN size':>9} {'tool':<26} {'wall s':>7} {'Mpx/s':>7} {'peak MiB':>9} {'cpu s':>7}")
    for size, best in results.items():
        for name, (sec, rss, cpu) in best.items():
            print(f"{size:>9} {name:<26} {sec:7.2f} {size * size / 1e6 / sec:7.2f} {rss:9.0f} "
                  f"{cpu:7.1f}")
    print()
    for size, best in results.items():
        for gname in (GDAL_T, GDAL_1, GDAL_T + " zstd"):
            if gname not in best:
                continue
            for name, (sec, _rss, _cpu) in best.items():
                if name.startswith("landslip"):
                    print(f"{size}: {gname} wall / {name} wall = {best[gname][0] / sec:.2f} "
                          "(>= 1: landslip at least as fast)")


if __name__ == "__main__":
    main()
