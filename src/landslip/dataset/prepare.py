"""Cut a scene and its label raster into a dataset folder of patches.

The scene is read patch window by patch window (never whole), patches go straight into
memory-mapped arrays in a temporary folder (:class:`~landslip.dataset.store.DatasetWriter`),
so scenes far larger than memory prepare in bounded memory.

Rules:
    * Patch windows come from :func:`landslip.dataset.tiling.patch_layout` and cover the whole
      scene, right and bottom edges included; the part of a window past the scene edge is
      padded with the image nodata value (0 when the image has none) and label 255.
    * A pixel is invalid when any band is nodata (nodata value, or GDAL mask when the image has
      no nodata value); its label becomes 255.
    * A patch is dropped when more than ``max_nodata`` of its pixels *inside the scene* are
      invalid (padding past the scene edge does not count, so thin edge patches are kept and
      the whole scene stays covered).
    * Splits and the leakage audit: :mod:`landslip.dataset.split`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.split import (
    PAPER_FRACTIONS,
    block_split,
    check_fractions,
    leakage_audit,
    random_split,
)
from landslip.dataset.store import IGNORE, DatasetFolder, DatasetWriter, sha256_file
from landslip.dataset.tiling import patch_layout
from landslip.errors import BandError, DatasetError, GridError, LabelError
from landslip.grid import Window
from landslip.io.raster import open_raster, raster_info, read_window
from landslip.progress import track
from landslip.spectral.bands import validate_band_names

__all__ = ["PrepareResult", "prepare_dataset", "resolve_band_names"]

log = logging.getLogger(__name__)

SPLIT_METHODS = ("random", "blocks")

GDAL_CACHE_MB = 128
"""GDAL block cache while reading the scene (MB), so memory stays bounded for any scene."""


@dataclass(frozen=True)
class PrepareResult:
    """What :func:`prepare_dataset` wrote.

    Attributes:
        dataset: The opened dataset folder.
        report: The JSON report (also in ``report.json`` and dataset.json).
    """

    dataset: DatasetFolder
    report: dict[str, Any]



def resolve_band_names(
    descriptions: Sequence[str | None], count: int, band_names: Sequence[str] | None
) -> list[str]:
    """Band names of an image: ``band_names`` if given, else its band descriptions.

    Raises:
        BandError: If neither gives one unique name per band.
    """
    if band_names is not None:
        names = list(validate_band_names(band_names))
        if len(names) != count:
            raise BandError(f"{len(names)} band names given ({','.join(names)}) but the image "
                            f"has {count} bands")
        desc = [d.strip().lower() for d in descriptions if d]
        if len(desc) == count and desc != names:
            log.warning("using --band-names %s instead of the band descriptions %s",
                        ",".join(names), ",".join(desc))
    else:
        if not descriptions or any(not d for d in descriptions):
            raise BandError(
                f"the image's {count} bands have no names (band descriptions); give them with "
                "--band-names, for example --band-names blue,green,red,nir"
            )
        names = [str(d).strip().lower() for d in descriptions]
    if len(set(names)) != len(names):
        raise BandError(f"band names must be unique, got {','.join(names)}")
    return names


def _valid_pixels(ds: Any, img: npt.NDArray[Any], win: Window, nodata: float | None,
                  masked: bool) -> npt.NDArray[np.bool_]:
    """(P, P) True where the pixel is inside the scene and no band is nodata."""
    valid = np.zeros(img.shape[1:], dtype=bool)
    inside = win.intersection(Window(0, 0, ds.height, ds.width))
    if inside is None:
        return valid
    rs, cs = inside.relative_to(win).slices()
    valid[rs, cs] = True
    if nodata is not None:
        if np.isnan(nodata):
            valid &= ~np.isnan(img).any(axis=0)
        else:
            valid &= ~(img == img.dtype.type(nodata)).any(axis=0)
    elif masked:
        m = ds.read_masks(window=inside.to_rasterio())
        valid[rs, cs] &= (m != 0).all(axis=0)
    return valid


def prepare_dataset(
    image: str | Path,
    labels: str | Path,
    out: str | Path,
    patch_size: int = 256,
    stride: int | None = None,
    split: str = "random",
    fractions: Sequence[float] = PAPER_FRACTIONS,
    seed: int = 0,
    block_size: int = 4,
    max_nodata: float = 0.5,
    band_names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> PrepareResult:
    """Cut a scene and its label raster into a dataset folder.

    Args:
        image: Multiband scene GeoTIFF (any raster GDAL reads), e.g. the fused B, G, R, NIR.
        labels: Label raster on exactly the image grid (``landslip rasterize --like IMAGE``):
            uint8 0, 1, 255.
        out: Output dataset folder (must not exist or be empty unless ``overwrite``).
        patch_size: Patch size P in pixels.
        stride: Step between patches (P: no overlap).
        split: ``random`` (the paper's) or ``blocks`` (spatially separate, with buffer).
        fractions: Train, val, test shares.
        seed: Seed of the split.
        block_size: Block side in patches for ``blocks``.
        max_nodata: Drop patches with more than this share of invalid in-scene pixels (0..1).
        band_names: Names of the image bands (else the band descriptions).
        overwrite: Replace an existing output folder.

    Returns:
        A :class:`PrepareResult`.

    Raises:
        GridError: Labels not on the image grid.
        BandError: Band names missing or wrong in number.
        LabelError: Label values other than 0, 1, 255.
        DatasetError: Bad options, or no patch left.
    """
    if split not in SPLIT_METHODS:
        raise DatasetError(f"unknown split method {split!r}; use one of {', '.join(SPLIT_METHODS)}")
    f = check_fractions(fractions)
    if patch_size < 8:
        raise DatasetError(f"patch size must be at least 8 pixels, got {patch_size}")
    step = patch_size if stride is None else stride
    if not 0 < step <= patch_size:
        raise DatasetError(f"stride must be between 1 and the patch size {patch_size}, "
                           f"got {step}")
    if not 0 <= max_nodata <= 1:
        raise DatasetError(f"--max-nodata must be between 0 and 1, got {max_nodata}")
    info = raster_info(image)
    linfo = raster_info(labels)
    grid = info.grid
    if linfo.count != 1:
        raise LabelError(f"label raster {labels} has {linfo.count} bands; expected 1 (make it "
                         "with `landslip rasterize LABELS --like IMAGE`)")
    if not np.issubdtype(np.dtype(linfo.dtype), np.integer):
        raise LabelError(f"label raster {labels} has dtype {linfo.dtype}; expected uint8 with "
                         "0, 1 and 255")
    if not linfo.grid.aligned_with(grid):
        grid.require_same_crs(linfo.grid, "image and label raster")
        raise GridError(
            f"label raster {labels} ({linfo.grid.height} x {linfo.grid.width} px, bounds "
            f"{tuple(round(v, 3) for v in linfo.grid.bounds)}) is not on the grid of {image} "
            f"({grid.height} x {grid.width} px, bounds {tuple(round(v, 3) for v in grid.bounds)}"
            "); rasterize the polygons with --like IMAGE"
        )
    names = resolve_band_names(info.descriptions, info.count, band_names)
    nodata = info.nodata
    layout = patch_layout(grid.height, grid.width, patch_size, step)
    fill = nodata if nodata is not None and not np.isnan(nodata) else 0
    kept: list[int] = []
    dropped_nodata = 0
    import rasterio
    from rasterio.enums import MaskFlags

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(image) as ds, open_raster(
        labels
    ) as ls, DatasetWriter(out, len(layout), names, info.dtype, patch_size, nodata,
                          overwrite) as writer:

        masked = nodata is None and any(
            flags != [MaskFlags.all_valid] for flags in ds.mask_flag_enums)
        for k in track(range(len(layout)), total=len(layout), description="prepare"):
            win = layout.windows[k]
            img = read_window(ds, win, fill=fill)
            valid = _valid_pixels(ds, img, win, nodata, masked)
            inside = win.intersection(Window(0, 0, grid.height, grid.width))
            n_inside = inside.height * inside.width if inside is not None else 0
            if n_inside == 0 or 1 - valid.sum() / n_inside > max_nodata + 1e-12:
                dropped_nodata += 1
                continue
            lab = read_window(ls, win, fill=IGNORE)[0]
            bad = ~np.isin(lab, (0, 1, IGNORE))
            if bad.any():
                raise LabelError(
                    f"label raster {labels} has values {sorted(np.unique(lab[bad]).tolist())[:5]}"
                    " besides 0, 1 and 255; make it with `landslip rasterize`"
                )
            lab = np.where(valid, lab, IGNORE).astype(np.uint8)
            wg = grid.window_grid(win)
            writer.add(img, lab, win.row_off, win.col_off, wg.bounds)
            kept.append(k)
        if not kept:
            raise DatasetError(f"every patch of {image} is more than {max_nodata:.0%} nodata; "
                               "check the image's nodata value or raise --max-nodata")
        windows = [layout.windows[k] for k in kept]
        if split == "random":
            splits: list[str | None] = list(random_split(len(kept), f, seed))
            split_meta: dict[str, Any] = {"method": "random", "fractions": list(f), "seed": seed}
        else:
            splits = block_split(windows, [layout.rows[k] for k in kept],
                                 [layout.cols[k] for k in kept], f, seed, block_size)
            split_meta = {"method": "blocks", "fractions": list(f), "seed": seed,
                          "block_size": block_size, "buffer": "training patches touching a "
                          "validation or test patch are dropped"}
        final_windows = [w for w, s in zip(windows, splits, strict=True) if s is not None]
        final_splits = [s for s in splits if s is not None]
        dropped_buffer = len(splits) - len(final_splits)
        if "train" not in final_splits:
            raise DatasetError("no training patch left after the split; use a smaller "
                               "--block-size or larger training fraction")
        audit = leakage_audit(final_windows, final_splits)
        sources = [{"role": "image", "path": str(Path(image).resolve()),
                    "sha256": sha256_file(image)},
                   {"role": "labels", "path": str(Path(labels).resolve()),
                    "sha256": sha256_file(labels)}]
        counts = {s: final_splits.count(s) for s in ("train", "val", "test")}
        report: dict[str, Any] = {
            "scene": {"height": grid.height, "width": grid.width, "bands": names,
                      "dtype": info.dtype, "nodata": nodata},
            "patches": {"windows": len(layout), "dropped_nodata": dropped_nodata,
                        "dropped_buffer": dropped_buffer, "kept": len(final_splits),
                        "max_nodata": max_nodata},
            "split": split_meta,
            "counts": counts,
            "leakage": audit,
            "sources": sources,
            "crs": grid.crs.to_wkt() if grid.crs is not None else None,
            "res": list(grid.res),
        }
        meta = {"stride": step, "split": split_meta, "crs": report["crs"], "res": report["res"],
                "sources": sources, "leakage": audit, "scene": report["scene"],
                "patches": report["patches"]}
        ds_out = writer.finish(splits, meta, report=report)
    report = json.loads((ds_out.path / "report.json").read_text(encoding="utf-8"))
    log.info("prepared %d patches (%s) into %s", len(ds_out),
             ", ".join(f"{s} {n}" for s, n in counts.items()), ds_out.path)
    return PrepareResult(dataset=ds_out, report=report)
