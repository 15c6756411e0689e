"""Size, time and peak memory of ``map.html`` (``landslip report``) for a large prediction.

Writes a SIZE x SIZE prediction folder without a model (a 4-band uint16 image, uint8
probability codes from a smooth field with many blob-shaped landslides, the mask at 0.5, the
polygons traced by ``polygonize_mask`` and a ``prediction.json``), all as COGs through
``RasterWriter``; then runs ``landslip report`` in a child process and prints its wall time,
peak resident memory and the size of the page, with the number of polygons and whether they
were simplified.

Usage:
    .venv/bin/python benchmarks/map_page.py [--size 8192] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from landslip.encoding import (
    IGNORE,
    LABELS_TAG,
    PROBABILITY_NODATA,
    encode_probability,
    mask_from_probability,
)
from landslip.grid import Grid, iter_clipped_tiles
from landslip.inference.vectorize import polygonize_mask, write_polygons
from landslip.io.cog import LABELS, probability_style
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterWriter

BANDS = ["blue", "green", "red", "nir"]


def write_folder(folder: Path, size: int) -> Path:
    """The image and a prediction folder of it; returns the prediction folder."""
    grid = Grid.from_bounds(CRS.from_epsg(32654), 560000.0, 4740000.0, 1.5, size, size)
    pred = folder / "pred"
    with gdal_env(128), \
            RasterWriter(folder / "scene.tif", grid, 4, "uint16", 0, BANDS) as wi, \
            RasterWriter(pred / "probability.tif", grid, 1, "uint8", PROBABILITY_NODATA,
                         ["landslide probability"], style=probability_style("uint8")) as wp, \
            RasterWriter(pred / "landslides.tif", grid, 1, "uint8", IGNORE,
                         ["landslide mask"], {"LANDSLIP_LABELS": LABELS_TAG},
                         style=LABELS) as wm:
        for w in iter_clipped_tiles(size, size, 2048):
            yy, xx = np.mgrid[w.row_off:w.row_end, w.col_off:w.col_end].astype(np.float32)
            field = np.sin(xx / 41.0) * np.cos(yy / 57.0) + 0.3 * np.sin((xx + yy) / 13.0)
            p = (1 / (1 + np.exp(-4 * (field - 0.9)))).astype(np.float32)
            base = 1000 + 300 * field
            wi.write(np.stack([base + 100 * b for b in range(4)]).astype(np.uint16), w)
            wp.write(encode_probability(p), w)
            wm.write(mask_from_probability(p, 0.5), w)
    with gdal_env(64):
        polys = polygonize_mask(pred / "landslides.tif", pred / "probability.tif")
    write_polygons(polys, pred / "landslides.gpkg")
    doc = {"format": "landslip-prediction", "version": 1, "image": str(folder / "scene.tif"),
           "height": size, "width": size, "band_set": "bgrn", "band_indexes": [1, 2, 3, 4],
           "threshold": 0.5, "polygons": len(polys.frame),
           "landslide_pixels": int(polys.frame["pixels"].sum()), "landslip_version": "bench",
           "valid_pixels": size * size}
    (pred / "prediction.json").write_text(json.dumps(doc))
    return pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--keep", type=Path, default=None, help="Work in DIR and keep the files.")
    args = ap.parse_args()
    ctx = tempfile.TemporaryDirectory() if args.keep is None else None
    folder = Path(ctx.name) if ctx is not None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pred = write_folder(folder, args.size)
    print(f"prediction folder {args.size} x {args.size} written in "
          f"{time.perf_counter() - t0:.0f} s")
    cli = Path(sys.executable).with_name("landslip")
    t0 = time.perf_counter()
    subprocess.run([str(cli), "-q", "report", str(pred)], check=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    page = pred / "map.html"
    item = json.loads((pred / "stac-item.json").read_text())
    print(f"landslip report: {seconds:.1f} s, peak resident memory {peak / 2**20:.0f} MiB; "
          f"map.html {page.stat().st_size / 1e6:.1f} MB for "
          f"{item['properties']['landslip:polygons']} polygons")
    if ctx is not None:
        ctx.cleanup()


if __name__ == "__main__":
    main()
