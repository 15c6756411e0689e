"""A small finished prediction folder for tests of what reads one (map page, STAC, info).

The image is a 4-band (blue, green, red, nir) uint16 scene in UTM with bright bare "scars"
and a nodata strip; the model is a stand-in whose logit is the normalised red band, so the
scars come out as landslides and the polygons, mask and probability are real outputs of
:func:`landslip.inference.predict.predict_image`. A tiny real bundle is saved beside it so
that ``prediction.json`` names a readable ``model.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rasterio.crs import CRS
from torch import nn

from landslip.grid import Grid
from landslip.inference.predict import PredictOptions, PredictResult, predict_image
from landslip.inference.stream import InputSpec
from landslip.io.raster import write_raster
from landslip.models.bundle import BundleMeta, save_bundle
from landslip.models.registry import create_model
from landslip.spectral.bands import resolve_band_set

__all__ = ["BANDS", "SCARS", "write_prediction"]

BANDS = ["blue", "green", "red", "nir"]
SCARS = [(20, 30, 14, 22), (60, 90, 10, 12), (100, 40, 16, 16)]
"""(row, col, height, width) of the bright scars: three separate landslides."""


class RedLogit(nn.Module):
    """Stand-in model: the logit of a pixel is its (normalised) red band."""

    in_channels = 1
    required_multiple = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 4.0


def write_image(path: Path, h: int = 144, w: int = 160) -> Grid:
    """The scene: vegetation (red ~400) with SCARS (red ~1500), rows 0-3 nodata (0)."""
    rng = np.random.default_rng(3)
    img = np.stack([rng.normal(v, 15, (h, w)) for v in (400, 600, 400, 2600)])
    for r, c, dh, dw in SCARS:
        img[:, r:r + dh, c:c + dw] = np.array([900, 1100, 1500, 1300])[:, None, None]
    img = np.clip(img, 1, 4000).astype(np.uint16)
    img[:, :4, :] = 0
    grid = Grid.from_bounds(CRS.from_epsg(32654), 560000.0, 4730000.0, 1.5, h, w)
    write_raster(path, img, grid, nodata=0, descriptions=BANDS)
    return grid


def write_prediction(folder: Path, html: bool = False, geojson: bool = True) -> PredictResult:
    """Write image, bundle and a prediction into ``folder`` (prediction in ``folder/pred``)."""
    image = folder / "scene.tif"
    write_image(image)
    torch.manual_seed(0)
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=4,
                      band_set="bgrn", band_names=BANDS, mean=[400.0, 600.0, 950.0, 2600.0],
                      std=[300.0, 300.0, 300.0, 600.0], threshold=0.5)
    save_bundle(folder / "run" / "bundle", create_model("unet", 4, width=4, depth=2), meta)
    spec = InputSpec(resolve_band_set("red"), (3,), (950.0,), (300.0,), 0.0)
    return predict_image(RedLogit(), spec, image, folder / "pred",
                         PredictOptions(window=64, overlap=32, geojson=geojson, html=html,
                                        device="cpu"),
                         report_extra={"bundle": str(folder / "run" / "bundle")})
