"""Peak memory and time of writing a large Cloud-Optimized GeoTIFF through ``RasterWriter``.

A child process streams a SIZE x SIZE raster (4-band uint16 image with averaged overviews, or a
1-band uint8 mask with nearest overviews and a colour table) tile by tile through
``landslip.io.raster.RasterWriter`` under a 128 MiB GDAL block cache, as synth, pansharpen,
rasterize and predict do; the COG copy with overviews happens when the writer closes. Prints
the child's peak resident memory (it must stay far below 2 GB at 16384 x 16384), the time of the
streaming and of the COG step, and whether ``rio cogeo validate`` accepts the file.

Usage:
    .venv/bin/python benchmarks/cog_memory.py [--size 16384] [--kind image|mask|both]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from landslip.grid import Grid, iter_clipped_tiles
from landslip.io.cog import CONTINUOUS, LABELS, check_cog
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterWriter


def write(path: Path, size: int, kind: str) -> None:
    """Stream the raster tile by tile and print the two phases' times (runs in the child)."""
    grid = Grid.from_bounds(CRS.from_epsg(32654), 560000.0, 4740000.0, 1.5, size, size)
    rng = np.random.default_rng(0)
    image = kind == "image"
    writer = RasterWriter(path, grid, 4 if image else 1, "uint16" if image else "uint8",
                          nodata=0 if image else 255,
                          descriptions=["blue", "green", "red", "nir"] if image else ["mask"],
                          style=CONTINUOUS if image else LABELS)
    with gdal_env(128):
        t0 = time.perf_counter()
        writer.__enter__()
        ok = False
        try:
            for w in iter_clipped_tiles(size, size, 2048):
                yy, xx = np.mgrid[w.row_off:w.row_end, w.col_off:w.col_end]
                if image:
                    base = (1000 + 300 * np.sin(xx / 500.0) * np.cos(yy / 700.0))
                    data = np.stack([base + 100 * b for b in range(4)]).astype(np.float32)
                    data += rng.normal(0, 20, size=data.shape).astype(np.float32)
                    arr = np.clip(data, 1, 4000).astype(np.uint16)
                else:
                    arr = ((np.sin(xx / 37.0) + np.cos(yy / 53.0)) > 1.6).astype(np.uint8)[None]
                writer.write(arr, w)
            t1 = time.perf_counter()
            ok = True
        finally:
            writer.__exit__(*((None, None, None) if ok else sys.exc_info()))
        t2 = time.perf_counter()
    print(f"  stream {t1 - t0:.1f} s, COG copy with overviews {t2 - t1:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--kind", choices=["image", "mask", "both"], default="both")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        write(args.child, args.size, args.kind)
        return
    for kind in (["image", "mask"] if args.kind == "both" else [args.kind]):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{kind}.tif"
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            print(f"{kind}: {args.size} x {args.size}")
            subprocess.run([sys.executable, __file__, "--size", str(args.size), "--kind", kind,
                            "--child", str(out)], check=True)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            if peak <= before:
                print("  (peak of this child not above an earlier child's; run kinds singly)")
            check = check_cog(out)
            print(f"  peak resident memory {peak / 2**10:.0f} MiB, file "
                  f"{out.stat().st_size / 2**20:.0f} MiB, COG valid: {check.valid} "
                  f"{' '.join(check.errors + check.warnings)}")


if __name__ == "__main__":
    main()
