"""Quick-look PNGs of rasters for the map page, on the Web Mercator grid Leaflet draws.

A raster is read at reduced resolution (at most ``max_px`` pixels on its long side; GDAL
averages, using the internal overviews of a Cloud-Optimized GeoTIFF when there are some, so a
16384 px scene costs a few MB), warped to EPSG:3857 (where a Leaflet image overlay placed on
its corner coordinates lines up exactly with vector layers), and coloured:

* the image in true colour when its red, green and blue bands are known (else its first band
  in grey), each band stretched linearly between its 2nd and 98th percentile;
* the probability with a perceptually uniform ramp (viridis stops, no red, so the landslide
  colour stays distinct), more opaque where the probability is higher.

Nodata is transparent in both.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.encoding import PROBABILITY_SCALE
from landslip.errors import InputError
from landslip.io.raster import open_raster

__all__ = [
    "MAX_PX",
    "PROBABILITY_RAMP",
    "Overlay",
    "image_overlay",
    "probability_overlay",
    "probability_rgba",
]

log = logging.getLogger(__name__)

MAX_PX = 2048
"""Largest side of a quick-look, pixels (bounds the size of the page)."""
PROBABILITY_RAMP: tuple[tuple[int, int, int], ...] = (
    (68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37),
)
"""Colours of probability 0, 0.25, 0.5, 0.75 and 1 (viridis)."""
Bounds = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Overlay:
    """A PNG to lay over the map.

    Attributes:
        png: The PNG file's bytes (RGBA).
        bounds: ((south, west), (north, east)) of the PNG, degrees (Leaflet's LatLngBounds).
        shape: (height, width) of the PNG, pixels.
    """

    png: bytes
    bounds: Bounds
    shape: tuple[int, int]


def _read_reduced(path: Path, indexes: Sequence[int], max_px: int
                  ) -> tuple[npt.NDArray[np.float32], Any, Any]:
    """Bands of a raster at most ``max_px`` on the long side: float32 (C, h, w), NaN = nodata.

    Returns:
        (array, its affine transform, the raster's CRS).
    """
    from affine import Affine
    from rasterio.enums import Resampling

    with open_raster(path) as ds:
        if ds.crs is None:
            raise InputError(f"{path} has no CRS, so it cannot be placed on a map; assign one "
                             "(gdal_edit.py -a_srs) and predict again")
        f = max(1.0, max(ds.height, ds.width) / max_px)
        h, w = max(1, round(ds.height / f)), max(1, round(ds.width / f))
        idx = list(indexes)
        data = ds.read(idx, out_shape=(len(idx), h, w), resampling=Resampling.average)
        valid = (ds.read_masks(idx, out_shape=(len(idx), h, w),
                               resampling=Resampling.nearest) > 0).all(axis=0)
        out = data.astype(np.float32)
        out[:, ~valid] = np.nan
        transform = ds.transform @ Affine.scale(ds.width / w, ds.height / h)
        return out, transform, ds.crs


def _to_web_mercator(data: npt.NDArray[np.float32], transform: Any, crs: Any, max_px: int,
                     nearest: bool = False) -> tuple[npt.NDArray[np.float32], Bounds]:
    """Warp (C, h, w) float32 (NaN nodata) to EPSG:3857; return it and its lat/lon bounds."""
    from affine import Affine
    from pyproj import Transformer
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.transform import array_bounds
    from rasterio.warp import calculate_default_transform, reproject

    c, h, w = data.shape
    web = CRS.from_epsg(3857)
    dst_t, dw, dh = calculate_default_transform(crs, web, w, h,
                                                *array_bounds(h, w, transform))
    f = max(1.0, max(dw, dh) / max_px)
    if f > 1.0:
        dw, dh = max(1, math.floor(dw / f)), max(1, math.floor(dh / f))
        dst_t = dst_t @ Affine.scale(f)
    out = np.full((c, dh, dw), np.nan, np.float32)
    reproject(data, out, src_transform=transform, src_crs=crs, src_nodata=np.nan,
              dst_transform=dst_t, dst_crs=web, dst_nodata=np.nan,
              resampling=Resampling.nearest if nearest else Resampling.bilinear)
    left, bottom, right, top = array_bounds(dh, dw, dst_t)
    to_ll = Transformer.from_crs(3857, 4326, always_xy=True)
    (west, east), (south, north) = to_ll.transform([left, right], [bottom, top])
    return out, ((float(south), float(west)), (float(north), float(east)))


def _png(rgba: npt.NDArray[np.uint8]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _stretch(band: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Linear stretch of one band between its 2nd and 98th percentile to 0-255 (NaN -> 0)."""
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return np.zeros(band.shape, np.uint8)
    lo, hi = (float(v) for v in np.percentile(finite, [2, 98]))
    scaled = (np.nan_to_num(band, nan=lo) - lo) / (hi - lo if hi > lo else 1.0)
    return np.asarray(np.clip(scaled * 255, 0, 255).round(), dtype=np.uint8)


def image_overlay(path: Path, rgb: Sequence[int] | None, max_px: int = MAX_PX) -> Overlay:
    """The image quick-look: true colour from bands ``rgb`` (1-based red, green, blue), or
    band 1 in grey when ``rgb`` is None; nodata transparent."""
    indexes = list(rgb) if rgb is not None else [1]
    data, transform, crs = _read_reduced(path, indexes, max_px)
    web, bounds = _to_web_mercator(data, transform, crs, max_px)
    bands = [_stretch(b) for b in web]
    if len(bands) == 1:
        bands = bands * 3
    alpha = np.where(np.isfinite(web).all(axis=0), 255, 0).astype(np.uint8)
    rgba = np.ascontiguousarray(np.stack([*bands, alpha], axis=-1))
    return Overlay(_png(rgba), bounds, (rgba.shape[0], rgba.shape[1]))


def probability_rgba(p: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Colour probabilities (H, W) float32 in [0, 1], NaN = nodata, as (H, W, 4) uint8 RGBA.

    Colours follow :data:`PROBABILITY_RAMP`; opacity rises from 0 at p = 0 to 220 at p >= 0.5,
    so the image shows through where the model sees nothing. NaN is transparent.
    """
    stops = np.linspace(0.0, 1.0, len(PROBABILITY_RAMP))
    q = np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0)
    ramp = np.asarray(PROBABILITY_RAMP, dtype=np.float64)
    rgb = [np.interp(q, stops, ramp[:, k]) for k in range(3)]
    alpha = np.where(np.isfinite(p), np.minimum(1.0, q / 0.5) * 220, 0)
    out = np.stack([*rgb, alpha], axis=-1).round().astype(np.uint8)
    return np.ascontiguousarray(out)


def probability_overlay(path: Path, max_px: int = MAX_PX) -> Overlay:
    """The probability quick-look of ``probability.tif`` (uint8 codes or float 0-1)."""
    with open_raster(path) as ds:
        coded = ds.dtypes[0] == "uint8"
    data, transform, crs = _read_reduced(path, [1], max_px)
    if coded:  # averaged codes: p = code / 254 (landslip.encoding), 255 is nodata (NaN here)
        data = data / np.float32(PROBABILITY_SCALE)
    web, bounds = _to_web_mercator(data, transform, crs, max_px)
    rgba = probability_rgba(web[0])
    return Overlay(_png(rgba), bounds, (rgba.shape[0], rgba.shape[1]))
