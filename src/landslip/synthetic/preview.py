"""A PNG preview of a scene: true colour and false colour (NIR, red, green) with the polygons.

Reads the MS raster decimated to at most ``max_px`` pixels across (average resampling), so a
16384-pixel scene previews as quickly as a small one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.io.atomic import atomic_path
from landslip.io.raster import open_raster

__all__ = ["write_preview"]


def _stretch(band: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    lo, hi = np.percentile(band, [2, 98])
    return np.asarray(np.clip((band - lo) / max(float(hi - lo), 1e-6), 0, 1), np.float32)


def write_preview(path: str | Path, ms_path: str | Path, polygons: list[Any],
                  max_px: int = 1024) -> Path:
    """Write a side-by-side true colour / false colour PNG with polygon outlines.

    Args:
        path: The PNG to write.
        ms_path: The 4-band MS GeoTIFF (blue, green, red, nir).
        polygons: Shapely polygons in the raster's CRS.
        max_px: Largest preview width in pixels per panel.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from rasterio.enums import Resampling

    with open_raster(ms_path) as ds:
        scale = max(1, int(np.ceil(max(ds.width, ds.height) / max_px)))
        shape = (ds.count, max(1, ds.height // scale), max(1, ds.width // scale))
        data = ds.read(out_shape=shape, resampling=Resampling.average).astype(np.float32)
        left, bottom, right, top = ds.bounds
    b, g, r, n = data
    true = np.dstack([_stretch(r), _stretch(g), _stretch(b)])
    false = np.dstack([_stretch(n), _stretch(r), _stretch(g)])
    lines = []
    for p in polygons:
        lines.append(np.asarray(p.exterior.coords))
    fig, axes = plt.subplots(1, 2, figsize=(14, 7.4), dpi=100)
    for ax, img, title in ((axes[0], true, "true colour (R, G, B)"),
                           (axes[1], false, "false colour (NIR, R, G)")):
        ax.imshow(img, extent=(left, right, bottom, top), interpolation="nearest")
        ax.add_collection(LineCollection(lines, colors="yellow", linewidths=0.6))
        ax.set_title(f"{title}; landslides outlined")
        ax.set_xlim(left, right)
        ax.set_ylim(bottom, top)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("easting (m, EPSG:32654)", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out
