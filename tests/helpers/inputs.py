"""Small input files for the reliability tests: scenes, label rasters, PAN/MS pairs, bundles.

Not part of the landslip package. Everything is tiny (tens of pixels) so that a test that runs
a verb end to end stays well under a second or two.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rasterio.crs import CRS

from landslip.grid import Grid
from landslip.io.raster import write_raster
from landslip.models.bundle import BandProfile, BundleMeta, InputProfile, save_bundle
from landslip.models.registry import create_model

__all__ = [
    "BANDS",
    "UTM",
    "make_bundle",
    "utm_grid",
    "write_labels",
    "write_pair",
    "write_scene",
]

BANDS = ["blue", "green", "red", "nir"]
UTM = CRS.from_epsg(32654)


def utm_grid(h: int, w: int, res: float = 1.5, left: float = 500000.0,
             top: float = 4740000.0, crs: Any = UTM) -> Grid:
    """A north-up grid of ``h`` x ``w`` pixels."""
    return Grid.from_bounds(crs, left, top, res, h, w)


def write_scene(path: Path, h: int = 40, w: int = 40, *, dtype: str = "uint16",
                names: Sequence[str] | None = BANDS, nodata: float | None = 0,
                seed: int = 1, low: float = 100, high: float = 900,
                data: npt.NDArray[Any] | None = None, grid: Grid | None = None) -> Path:
    """A 4-band scene with values in [low, high) (or ``data``), band descriptions ``names``."""
    if data is None:
        rng = np.random.default_rng(seed)
        data = rng.uniform(low, high, (4, h, w)).astype(dtype)
    write_raster(path, data, grid or utm_grid(data.shape[1], data.shape[2]), nodata=nodata,
                 descriptions=list(names) if names is not None else None)
    return path


def write_labels(path: Path, h: int = 40, w: int = 40, *, values: Sequence[int] = (0, 1),
                 grid: Grid | None = None, seed: int = 2) -> Path:
    """A uint8 label raster drawn from ``values``."""
    rng = np.random.default_rng(seed)
    lab = rng.choice(np.asarray(values, dtype=np.uint8), size=(h, w))
    write_raster(path, lab, grid or utm_grid(h, w))
    return path


def write_pair(folder: Path, pan_size: int = 64, ratio: int = 4, *, dtype: str = "uint16",
               seed: int = 3, bands: int = 4) -> tuple[Path, Path]:
    """A PAN (one band, 1.5 m) and MS (``bands`` bands, 1.5 * ratio m) pair over one extent."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ms_size = pan_size // ratio
    pan = rng.uniform(100, 900, (pan_size, pan_size)).astype(dtype)
    ms = rng.uniform(100, 900, (bands, ms_size, ms_size)).astype(dtype)
    write_raster(folder / "pan.tif", pan, utm_grid(pan_size, pan_size))
    write_raster(folder / "ms.tif", ms, utm_grid(ms_size, ms_size, res=1.5 * ratio),
                 descriptions=BANDS[:bands] if bands <= 4 else None)
    return folder / "pan.tif", folder / "ms.tif"


def make_bundle(folder: Path, *, band_set: str = "bgr", profile: InputProfile | None = None,
                with_profile: bool = True, seed: int = 0, std: float = 200.0) -> Path:
    """A tiny random U-Net bundle (width 4, depth 2) over ``band_set`` (raw bands only).

    Its normalisation is mean 500, std ``std`` per band (a small std gives varied
    probabilities); its training profile (unless
    ``with_profile`` is False) says the training pixels lay in 100-900 with median 500.
    """
    from landslip.spectral.bands import resolve_band_set

    bs = resolve_band_set(band_set)
    torch.manual_seed(seed)
    model = create_model("unet", len(bs), width=4, depth=2)
    if profile is None and with_profile:
        profile = InputProfile(dtype="uint16", pixels=1000, bands={
            b: BandProfile(p1=108.0, p50=500.0, p99=892.0) for b in bs.required})
    meta = BundleMeta(model="unet", model_params={"width": 4, "depth": 2}, in_channels=len(bs),
                      band_set=band_set, band_names=list(bs.names), mean=[500.0] * len(bs),
                      std=[std] * len(bs), threshold=0.5, input_profile=profile)
    save_bundle(folder, model, meta)
    return folder
