"""Cut a scene and its label raster into a dataset folder of patches.

The scene is read patch window by patch window (never whole), patches go straight into
memory-mapped arrays in a temporary folder (:class:`~landslip.dataset.writer.DatasetWriter`),
so scenes far larger than memory prepare in bounded memory.

Rules:
    * Patch windows come from :func:`landslip.dataset.tiling.patch_layout` and cover the whole
      scene, right and bottom edges included; the part of a window past the scene edge is
      padded with the image nodata value (0 when the image has none) and label 255.
    * A pixel is invalid when any band is nodata (nodata value, NaN or infinite, or GDAL mask
      when the image has no nodata value: an alpha band, which is never a data band, or an
      internal mask); its label becomes 255.
    * A patch is dropped when more than ``max_nodata`` of its pixels *inside the scene* are
      invalid (padding past the scene edge does not count, so thin edge patches are kept and
      the whole scene stays covered).
    * Splits and the leakage audit: :mod:`landslip.dataset.split`.
    * Extra inputs (``extras``, :mod:`landslip.spectral.extras`): other rasters (a pre-event
      image, a DEM) are warped window by window onto the image grid and stored after the
      image bands under their names (``pre_blue`` .. ``pre_nir``, ``dem``); terrain bands
      (``slope`` by default when a ``dem`` band is given) are computed from the DEM read with a
      halo around each window, so patch borders hold the scene's slope, not a patch's. With
      extras the dataset is float32 with nodata :data:`EXTRA_NODATA`, and a pixel that is
      nodata in any band (image or extra) is that value in every band and label 255.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.checksums import sha256_file
from landslip.dataset.folder import DatasetFolder
from landslip.dataset.index import SPLITS
from landslip.dataset.split import (
    PAPER_FRACTIONS,
    block_split,
    check_fractions,
    leakage_audit,
    random_split,
)
from landslip.dataset.stats import nodata_free
from landslip.dataset.tiling import PatchLayout, patch_layout
from landslip.dataset.writer import DatasetWriter
from landslip.encoding import IGNORE
from landslip.errors import BandError, DatasetError, GridError, LabelError
from landslip.grid import Grid, Window
from landslip.io.checks import declare_nodata, warn_nonfinite
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterInfo, open_raster, raster_info, read_window
from landslip.labels.values import labels_from_values
from landslip.progress import track
from landslip.spectral.extras import DEM_BAND, ExtraInputs, ExtraSpec, parse_extra
from landslip.spectral.naming import image_band_names

__all__ = ["EXTRA_NODATA", "PrepareOptions", "PrepareResult", "prepare_dataset"]

log = logging.getLogger(__name__)

SPLIT_METHODS = ("random", "blocks")

GDAL_CACHE_MB = 128
"""GDAL block cache while reading the scene (MiB), so memory stays bounded for any scene."""

EXTRA_NODATA = float(np.finfo(np.float32).min)
"""Nodata value of datasets with extra inputs (float32): no band (reflectance, elevation,
slope) can take it, whereas 0 is a valid slope and elevation."""


@dataclass(frozen=True)
class PrepareResult:
    """What :func:`prepare_dataset` wrote.

    Attributes:
        dataset: The opened dataset folder.
        report: The JSON report (also in ``report.json`` and dataset.json).
    """

    dataset: DatasetFolder
    report: dict[str, Any]



@dataclass(frozen=True)
class PrepareOptions:
    """How :func:`prepare_dataset` cuts and splits a scene (checked on creation).

    Attributes:
        patch_size: Patch size P in pixels (at least 8).
        stride: Step between patches (None: P, no overlap; 1..P).
        split: ``random`` (the paper's) or ``blocks`` (spatially separate, with buffer).
        fractions: Train, val, test shares.
        seed: Seed of the split.
        block_size: Block side in patches for ``blocks``.
        max_nodata: Drop patches with more than this share of invalid in-scene pixels (0..1).

    Raises:
        DatasetError: For a value out of range.
    """

    patch_size: int = 256
    stride: int | None = None
    split: str = "random"
    fractions: Sequence[float] = PAPER_FRACTIONS
    seed: int = 0
    block_size: int = 4
    max_nodata: float = 0.5

    def __post_init__(self) -> None:
        if self.split not in SPLIT_METHODS:
            raise DatasetError(f"unknown split method {self.split!r}; use one of "
                               f"{', '.join(SPLIT_METHODS)}")
        object.__setattr__(self, "fractions", check_fractions(self.fractions))
        if self.patch_size < 8:
            raise DatasetError(f"patch size must be at least 8 pixels, got {self.patch_size}")
        if not 0 < self.step <= self.patch_size:
            raise DatasetError(f"stride must be between 1 and the patch size {self.patch_size}, "
                               f"got {self.step}")
        if not 0 <= self.max_nodata <= 1:
            raise DatasetError(f"--max-nodata must be between 0 and 1, got {self.max_nodata}")

    @property
    def step(self) -> int:
        """Step between patch starts in pixels."""
        return self.patch_size if self.stride is None else self.stride


@dataclass(frozen=True)
class _Scene:
    """The checked inputs: image and label rasters on one grid, the data bands and names."""

    image: Path
    labels: Path | None
    info: RasterInfo
    names: list[str]
    bands: tuple[int, ...] = ()
    landslide_values: tuple[int, ...] | None = None
    extras: ExtraInputs | None = None

    @property
    def grid(self) -> Grid:
        return self.info.grid


def prepare_dataset(
    image: str | Path,
    labels: str | Path | None,
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
    extras: Sequence[ExtraSpec | str] = (),
    terrain: Sequence[str] | None = None,
    nodata: float | None = None,
    landslide_values: Sequence[int] | None = None,
) -> PrepareResult:
    """Cut a scene and its label raster into a dataset folder.

    Args:
        image: Multiband scene GeoTIFF (any raster GDAL reads), e.g. the fused B, G, R, NIR.
        labels: Label raster on exactly the image grid (``landslip rasterize --like IMAGE``):
            uint8 0, 1, 255. None: an unlabelled dataset (every label 255), e.g. the
            imagery of a new event for self-training (:mod:`landslip.training.selftrain`).
        out: Output dataset folder (must not exist or be empty unless ``overwrite``).
        patch_size, stride, split, fractions, seed, block_size, max_nodata: See
            :class:`PrepareOptions`.
        band_names: Names of the image bands (else the band descriptions or colour
            interpretation; :mod:`landslip.spectral.naming`).
        overwrite: Replace an existing output folder.
        extras: Extra rasters (:class:`~landslip.spectral.extras.ExtraSpec` or the text of
            ``--extra``: ``[NAMES=]PATH[:RESAMPLING]``), stored after the image bands.
        terrain: Terrain bands computed from the ``dem`` band of ``extras`` (default:
            ``slope`` when there is a ``dem`` band, else none).
        nodata: Nodata value of the image when the file lacks the tag (``--nodata``).
        landslide_values: Label values that mean landslide (``--landslide-values``;
            :mod:`landslip.labels.values`); None: the labels are 0, 1 and 255.

    Returns:
        A :class:`PrepareResult`.

    Raises:
        GridError: Labels not on the image grid.
        BandError: Band names missing or wrong in number.
        LabelError: Label values other than 0, 1, 255.
        DatasetError: Bad options, or no patch left.
    """
    opts = PrepareOptions(patch_size, stride, split, fractions, seed, block_size, max_nodata)
    scene = _check_scene(Path(image), None if labels is None else Path(labels), band_names,
                         nodata, landslide_values)
    scene = _with_extras(scene, extras, terrain)
    layout = patch_layout(scene.grid.height, scene.grid.width, opts.patch_size, opts.step)
    dtype, nodata = scene.info.dtype, scene.info.nodata
    if scene.extras is not None:
        dtype, nodata = "float32", EXTRA_NODATA
    with ExitStack() as stack:
        stack.enter_context(gdal_env(GDAL_CACHE_MB))
        img_ds = stack.enter_context(open_raster(scene.image))
        lab_ds = (None if scene.labels is None
                  else stack.enter_context(open_raster(scene.labels)))
        if scene.extras is not None:
            stack.enter_context(scene.extras)
        writer = stack.enter_context(DatasetWriter(
            out, len(layout), scene.names, dtype, opts.patch_size, nodata, overwrite))
        kept = _cut_patches(img_ds, lab_ds, scene, layout, opts.max_nodata, writer)
        splits, split_meta = _split(layout, kept, opts)
        report = _report(scene, layout, kept, splits, split_meta, opts)
        meta = {"stride": opts.step, "split": split_meta, "crs": report["crs"],
                "res": report["res"], "sources": report["sources"],
                "leakage": report["leakage"], "scene": report["scene"],
                "patches": report["patches"]}
        if "extras" in report:
            meta["extras"] = report["extras"]
        ds_out = writer.finish(splits, meta, report=report)
    report = json.loads((ds_out.path / "report.json").read_text(encoding="utf-8"))
    log.info("prepared %d patches (%s) into %s", len(ds_out),
             ", ".join(f"{s} {n}" for s, n in report["counts"].items()), ds_out.path)
    return PrepareResult(dataset=ds_out, report=report)


def _check_scene(image: Path, labels: Path | None, band_names: Sequence[str] | None,
                 nodata: float | None = None,
                 landslide_values: Sequence[int] | None = None) -> _Scene:
    """Check that the label raster is one integer band on the image grid; name the bands."""
    info = declare_nodata(raster_info(image), nodata)
    grid = info.grid
    if labels is not None:
        _check_labels(image, labels, grid)
    bands, names = image_band_names(info, band_names)
    warn_nonfinite(image, bands)
    values = tuple(landslide_values) if landslide_values is not None else None
    return _Scene(image, labels, info, names, bands, values)


def _check_labels(image: Path, labels: Path, grid: Grid) -> None:
    """Check that the label raster is one integer band on the image grid."""
    linfo = raster_info(labels)
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


def _with_extras(scene: _Scene, extras: Sequence[ExtraSpec | str],
                 terrain: Sequence[str] | None) -> _Scene:
    """The scene with its extra inputs checked and named (no file is read yet)."""
    specs = [parse_extra(e) if isinstance(e, str) else e for e in extras]
    if not specs:
        if terrain:
            raise BandError(f"terrain band(s) {', '.join(terrain)} need a DEM; add "
                            "--extra dem=DEM.tif")
        return scene
    inputs = ExtraInputs(specs, scene.grid, (), scene.names)
    if terrain is None:
        terrain = ("slope",) if DEM_BAND in inputs.raw_names else ()
    inputs = ExtraInputs(specs, scene.grid, terrain, scene.names)
    return replace(scene, names=[*scene.names, *inputs.names], extras=inputs)


def _cut_patches(img_ds: Any, lab_ds: Any, scene: _Scene, layout: PatchLayout,
                 max_nodata: float, writer: DatasetWriter) -> list[int]:
    """Read every window, drop the mostly-nodata ones, add the others to ``writer``.

    Returns:
        The layout indices of the patches added, in order.
    """
    nodata = scene.info.nodata
    fill = nodata if nodata is not None and not np.isnan(nodata) else 0
    masked = scene.info.masked
    scene_window = Window(0, 0, scene.grid.height, scene.grid.width)
    kept: list[int] = []
    for k in track(range(len(layout)), total=len(layout), description="prepare"):
        win = layout.windows[k]
        img = read_window(img_ds, win, scene.bands or None, fill=fill)
        valid = _valid_pixels(img_ds, img, win, nodata, masked)
        if scene.extras is not None:
            img, valid = _add_extras(img, valid, scene.extras, win)
        inside = win.intersection(scene_window)
        n_inside = inside.height * inside.width if inside is not None else 0
        if n_inside == 0 or 1 - valid.sum() / n_inside > max_nodata + 1e-12:
            continue
        if lab_ds is None or scene.labels is None:  # unlabelled
            lab = np.full(valid.shape, IGNORE, dtype=np.uint8)
        else:
            lab = _read_labels(lab_ds, win, scene.labels, scene.landslide_values)
            lab = np.where(valid, lab, IGNORE).astype(np.uint8)
        writer.add(img, lab, win.row_off, win.col_off, scene.grid.window_grid(win).bounds)
        kept.append(k)
    if not kept:
        raise DatasetError(f"every patch of {scene.image} is more than {max_nodata:.0%} nodata; "
                           "check the image's nodata value or raise --max-nodata")
    return kept


def _add_extras(img: npt.NDArray[Any], valid: npt.NDArray[np.bool_], extras: ExtraInputs,
                win: Window) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Image bands and extra bands of a window as float32, :data:`EXTRA_NODATA` where invalid."""
    more = extras.read(win)
    valid = valid & np.isfinite(more).all(axis=0)
    stacked = np.concatenate([img.astype(np.float32), more], axis=0)
    stacked[:, ~valid] = np.float32(EXTRA_NODATA)
    return stacked, valid


def _valid_pixels(ds: Any, img: npt.NDArray[Any], win: Window, nodata: float | None,
                  masked: bool) -> npt.NDArray[np.bool_]:
    """(P, P) True where the pixel is inside the scene and no band is nodata."""
    valid = np.zeros(img.shape[1:], dtype=bool)
    inside = win.intersection(Window(0, 0, ds.height, ds.width))
    if inside is None:
        return valid
    rs, cs = inside.relative_to(win).slices()
    valid[rs, cs] = True
    if img.dtype.kind == "f":
        valid &= np.isfinite(img).all(axis=0)
    if nodata is not None:
        valid &= nodata_free(img, nodata)
    elif masked:
        m = ds.read_masks(window=inside.to_rasterio())
        valid[rs, cs] &= (m != 0).all(axis=0)
    return valid


def _read_labels(lab_ds: Any, win: Window, path: Path,
                 landslide_values: Sequence[int] | None = None) -> npt.NDArray[Any]:
    """(P, P) labels 0/1/255 of a window (IGNORE past the edges), from the raster's values."""
    return labels_from_values(read_window(lab_ds, win, fill=IGNORE)[0], landslide_values, path)


def _split(layout: PatchLayout, kept: Sequence[int], opts: PrepareOptions
           ) -> tuple[list[str | None], dict[str, Any]]:
    """One split name per kept patch (None: dropped as buffer), and the split's metadata."""
    f = list(opts.fractions)
    meta: dict[str, Any] = {"method": opts.split, "fractions": f, "seed": opts.seed}
    if opts.split == "random":
        splits: list[str | None] = list(random_split(len(kept), opts.fractions, opts.seed))
    else:
        splits = block_split([layout.windows[k] for k in kept], [layout.rows[k] for k in kept],
                             [layout.cols[k] for k in kept], opts.fractions, opts.seed,
                             opts.block_size)
        meta.update(block_size=opts.block_size, buffer="training patches touching a "
                    "validation or test patch are dropped")
    if "train" not in splits:
        raise DatasetError("no training patch left after the split; use a smaller "
                           "--block-size or larger training fraction")
    return splits, meta


def _report(scene: _Scene, layout: PatchLayout, kept: Sequence[int],
            splits: Sequence[str | None], split_meta: dict[str, Any], opts: PrepareOptions
            ) -> dict[str, Any]:
    """The JSON report of a preparation: scene, patch counts, split, leakage audit, sources."""
    final = [(layout.windows[k], s) for k, s in zip(kept, splits, strict=True) if s is not None]
    final_splits = [s for _, s in final]
    grid = scene.grid
    report: dict[str, Any] = {
        "scene": {"height": grid.height, "width": grid.width, "bands": scene.names,
                  "dtype": scene.info.dtype, "nodata": scene.info.nodata},
        "patches": {"windows": len(layout), "dropped_nodata": len(layout) - len(kept),
                    "dropped_buffer": len(kept) - len(final), "kept": len(final),
                    "max_nodata": opts.max_nodata},
        "split": split_meta,
        "counts": {s: final_splits.count(s) for s in SPLITS},
        "leakage": leakage_audit([w for w, _ in final], final_splits),
        "sources": [{"role": "image", "path": str(scene.image.resolve()),
                     "sha256": sha256_file(scene.image)},
                    *([] if scene.labels is None else
                      [{"role": "labels", "path": str(scene.labels.resolve()),
                        "sha256": sha256_file(scene.labels)}])],
        "crs": grid.crs.to_wkt() if grid.crs is not None else None,
        "res": list(grid.res),
    } | _extras_report(scene)
    if "extras" in report:
        report["sources"] += [{"role": "extra", "path": r["path"], "sha256": r["sha256"]}
                              for r in report["extras"]["rasters"]]
    return report


def _extras_report(scene: _Scene) -> dict[str, Any]:
    """The ``extras`` block (rasters, their bands, resampling, terrain bands) and sources."""
    if scene.extras is None:
        return {}
    rasters = scene.extras.describe()
    for r in rasters:
        r["sha256"] = sha256_file(Path(str(r["path"])))
        r["path"] = str(Path(str(r["path"])).resolve())
    return {"extras": {"rasters": rasters, "terrain": list(scene.extras.terrain),
                       "terrain_units": {"slope": "degrees", "hillshade": "0-1"}}}
