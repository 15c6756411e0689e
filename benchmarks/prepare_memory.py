"""Peak memory of ``landslip prepare`` on a large scene: it must not load the scene whole.

Writes a SIZE x SIZE, 4-band uint16 scene (smooth fields plus noise, nodata 0 in one corner)
and its label raster window by window into a temporary folder, then runs
``landslip prepare`` in a child process and prints the child's peak resident memory next to
the scene's uncompressed size.

Usage:
    .venv/bin/python benchmarks/prepare_memory.py [--size 16384] [--patch-size 256]
        [--keep DIR]
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

from landslip.grid import Grid, iter_tiles
from landslip.io.raster import RasterWriter


def write_scene(folder: Path, size: int) -> tuple[Path, Path]:
    grid = Grid.from_bounds(CRS.from_epsg(32654), 560000.0, 4740000.0, 1.5, size, size)
    img, lab = folder / "scene.tif", folder / "labels.tif"
    rng = np.random.default_rng(0)
    with RasterWriter(img, grid, 4, "uint16", nodata=0,
                      descriptions=["blue", "green", "red", "nir"]) as wi, \
            RasterWriter(lab, grid, 1, "uint8", nodata=255) as wl:
        for win in iter_tiles(size, size, 2048):
            w = win.clip(size, size)
            yy, xx = np.mgrid[w.row_off:w.row_end, w.col_off:w.col_end]
            base = (1000 + 300 * np.sin(xx / 500.0) * np.cos(yy / 700.0)).astype(np.float32)
            data = np.stack([base + 100 * b for b in range(4)])
            data += rng.normal(0, 20, size=data.shape).astype(np.float32)
            arr = np.clip(data, 1, 4000).astype(np.uint16)
            slide = ((np.sin(xx / 37.0) + np.cos(yy / 53.0)) > 1.6).astype(np.uint8)
            corner = (xx < size // 8) & (yy < size // 8)
            arr[:, corner] = 0
            slide[corner] = 255
            wi.write(arr, w)
            wl.write(slide, w)
    return img, lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--patch-size", type=int, default=256)
    ap.add_argument("--keep", type=Path, default=None,
                    help="Work in DIR and keep the files (a scene already there is reused).")
    args = ap.parse_args()
    ctx = tempfile.TemporaryDirectory() if args.keep is None else None
    folder = Path(ctx.name) if ctx is not None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        img, lab = folder / "scene.tif", folder / "labels.tif"
        if not (args.keep is not None and img.exists() and lab.exists()):
            img, lab = write_scene(folder, args.size)
        t_write = time.perf_counter() - t0
        cli = Path(sys.executable).with_name("landslip")
        t0 = time.perf_counter()
        subprocess.run([str(cli), "-q", "prepare", str(img), str(lab), "-o",
                        str(folder / "dataset"), "--patch-size", str(args.patch_size),
                        "--split", "blocks", "--overwrite"], check=True)
        t_prep = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        scene_bytes = args.size * args.size * 4 * 2
        print(f"scene {args.size} x {args.size} x 4 uint16: {scene_bytes / 2**30:.2f} GiB "
              f"uncompressed (written in {t_write:.0f} s)")
        print(f"landslip prepare: {t_prep:.0f} s, peak resident memory {peak / 2**20:.0f} MiB "
              f"({100 * peak / scene_bytes:.1f} % of the scene size)")
    finally:
        if ctx is not None:
            ctx.cleanup()


if __name__ == "__main__":
    main()
