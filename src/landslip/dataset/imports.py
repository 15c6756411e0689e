"""Import pre-chipped patch datasets into the dataset folder format.

Two layouts are read:

``folders``
    Image and mask folders, one patch per file: PNG (8/16-bit, grey, RGB or RGBA), GeoTIFF
    or NumPy ``.npy`` files (``(C, H, W)`` or ``(H, W, C)``), such as the Landslide4Sense RGB
    set (``train/images/image_N.png`` + ``train/masks/mask_N.png``).
``l4s-h5``
    The Landslide4Sense HDF5 layout: ``img`` datasets of 128 x 128 x 14 (Sentinel-2 B1-B12,
    slope, DEM) and ``mask`` datasets of 128 x 128, in ``img/`` and ``mask/`` folders (or one
    file holding both).

Folder discovery: SRC either holds split folders (``train``/``training``/``TrainData``,
``val``/``valid``/``validation``/``ValidData``, ``test``/``testing``/``TestData``; case does
not matter), each with an image folder (``images``, ``image``, ``img``, ``imgs``) and a mask
folder (``masks``, ``mask``, ``labels``, ``label``, ``gt``), or it holds the image and mask
folders itself (everything is then training data).

Pairing rule: an image and a mask belong together when their file stems give the same key.
The key is the trailing number of the stem when it ends in digits (``image_12`` and
``mask_12`` -> 12; leading zeros ignored), else the stem without a leading ``image``, ``img``,
``mask``, ``label(s)`` or ``gt`` word and separator (``img_tile-a`` and ``mask_tile-a``).
An image without mask, a mask without image, or two files with one key is an error.

Masks: channel 0 is used. A mask whose values include 1 is read as labels (0, 1 and 255 =
ignore); otherwise a pixel is landslide where channel 0 > 127 (0/255 masks such as the
Landslide4Sense PNGs). ``mask_mode`` forces either reading; ``landslide_values`` (class masks
such as 1 = landslide, 2 = other) says which values mean landslide instead
(:mod:`landslip.labels.values`, which also refuses readings that would silently drop a class).

Bands: an alpha band (RGBA or LA PNG, GeoTIFF alpha) is never a data band: it is dropped and
pixels where it is 0 get label 255, as do pixels where any band is NaN or infinite. Band names
come from ``band_names``, else the band descriptions or colour interpretation
(:mod:`landslip.spectral.naming`).

Splits: train and test (and val) folders are kept; when there is no validation folder,
``val_fraction`` of the training patches (seeded) become the validation split. ``as_split``
puts every patch into one split instead (``test``: score a model on any labelled set).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.checksums import sha256_file
from landslip.dataset.folder import DatasetFolder
from landslip.dataset.index import SPLITS
from landslip.dataset.stats import warn_nonfinite_patches
from landslip.dataset.writer import DatasetWriter
from landslip.encoding import IGNORE, LANDSLIDE
from landslip.errors import BandError, DatasetError, RasterIOError
from landslip.io.raster import band_colours, open_raster, raster_info
from landslip.labels.values import check_threshold_mask, labels_from_values
from landslip.progress import track
from landslip.spectral.bands import validate_band_names
from landslip.spectral.naming import data_bands, file_band_names, naming_hint

__all__ = [
    "L4S_BAND_NAMES",
    "ImportResult",
    "discover_pairs",
    "import_patches",
    "pair_key",
]

log = logging.getLogger(__name__)

L4S_BAND_NAMES: tuple[str, ...] = (
    "b01", "blue", "green", "red", "b05", "b06", "b07", "nir", "b09", "b10", "b11", "b12",
    "slope", "dem",
)
"""Names of the 14 Landslide4Sense bands: Sentinel-2 B1-B12 as listed by the benchmark
(B2, B3, B4, B8 named blue, green, red, nir so NDVI works), then ALOS PALSAR slope and DEM."""

_SPLIT_DIRS = {
    "train": ("train", "training", "traindata"),
    "val": ("val", "valid", "validation", "validdata", "validationdata"),
    "test": ("test", "testing", "testdata"),
}
_IMAGE_DIRS = ("images", "image", "img", "imgs")
_MASK_DIRS = ("masks", "mask", "labels", "label", "gt")
_FOLDER_EXT = (".png", ".tif", ".tiff", ".npy")
_H5_EXT = (".h5", ".hdf5")
_PREFIX = re.compile(r"^(image|img|mask|labels?|gt)[_\-.]?", re.IGNORECASE)
_TRAILING = re.compile(r"(\d+)$")
LAYOUTS = ("auto", "folders", "l4s-h5")
MASK_MODES = ("auto", "threshold", "labels")
_PNG_COLOURS = {"RGB": ("red", "green", "blue"), "RGBA": ("red", "green", "blue", "alpha"),
                "LA": ("gray", "alpha"), "L": ("gray",)}


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_patches` wrote.

    Attributes:
        dataset: The opened dataset folder.
        report: The JSON report (also ``report.json`` in the folder).
    """

    dataset: DatasetFolder
    report: dict[str, Any]


def pair_key(stem: str) -> str:
    """The pairing key of a file stem (see the module docstring)."""
    m = _TRAILING.search(stem)
    if m:
        return str(int(m.group(1)))
    return _PREFIX.sub("", stem).lower()


def _natural(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def _child(folder: Path, names: Sequence[str]) -> Path | None:
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if p.is_dir() and p.name.lower() in names:
            return p
    return None


def discover_pairs(src: str | Path, layout: str = "auto"
                   ) -> tuple[str, dict[str, list[tuple[Path, Path | None]]]]:
    """Find image/mask pairs per split under ``src``.

    Returns:
        (layout used, {split: [(image file, mask file or None when the h5 image holds it)]}).

    Raises:
        DatasetError: Nothing found, unpaired files or duplicate keys.
    """
    root = Path(src)
    if not root.is_dir():
        raise DatasetError(f"source folder not found: {root}")
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    split_dirs = {s: d for s in SPLITS if (d := _child(root, _SPLIT_DIRS[s])) is not None}
    if not split_dirs:
        split_dirs = {"train": root}
    if layout == "auto":
        has_h5 = any(p.suffix.lower() in _H5_EXT for d in split_dirs.values()
                     for p in d.rglob("*") if p.is_file())
        layout = "l4s-h5" if has_h5 else "folders"
    exts = _H5_EXT if layout == "l4s-h5" else _FOLDER_EXT
    pairs: dict[str, list[tuple[Path, Path | None]]] = {}
    for split, d in split_dirs.items():
        img_dir = _child(d, _IMAGE_DIRS)
        mask_dir = _child(d, _MASK_DIRS)
        if img_dir is None:
            if layout == "l4s-h5":
                img_dir = d  # single files holding img and mask
            else:
                raise DatasetError(f"no image folder ({'/'.join(_IMAGE_DIRS)}) in {d}")
        images = _files(img_dir, exts)
        if not images:
            raise DatasetError(f"no {'/'.join(exts)} files in {img_dir}")
        if mask_dir is None:
            if layout == "l4s-h5":
                pairs[split] = [(p, None) for _, p in sorted(images.items(),
                                                             key=lambda kv: _natural(kv[0]))]
                continue
            raise DatasetError(f"no mask folder ({'/'.join(_MASK_DIRS)}) in {d}")
        masks = _files(mask_dir, exts)
        lonely_i = sorted(set(images) - set(masks), key=_natural)
        lonely_m = sorted(set(masks) - set(images), key=_natural)
        if lonely_i or lonely_m:
            parts = []
            if lonely_i:
                parts.append(f"{len(lonely_i)} image(s) without mask, e.g. "
                             f"{', '.join(images[k].name for k in lonely_i[:3])}")
            if lonely_m:
                parts.append(f"{len(lonely_m)} mask(s) without image, e.g. "
                             f"{', '.join(masks[k].name for k in lonely_m[:3])}")
            raise DatasetError(f"cannot pair the files of {d}: {'; '.join(parts)} (images and "
                               "masks pair by the trailing number of their names)")
        pairs[split] = [(images[k], masks[k]) for k in sorted(images, key=_natural)]
    return layout, pairs


def _files(folder: Path, exts: Sequence[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."):
            key = pair_key(p.stem)
            if key in out:
                raise DatasetError(f"{out[key].name} and {p.name} in {folder} have the same "
                                   f"pairing key {key!r}; rename one")
            out[key] = p
    return out


def _read_array(path: Path, h5_key: str) -> tuple[npt.NDArray[Any], tuple[str, ...],
                                                 list[str | None]]:
    """Read one file as (C, H, W); also its colour interpretation (or ()) and descriptions."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            from PIL import Image

            with Image.open(path) as im:
                mode = im.mode
                arr = np.asarray(im)
            arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
            return arr, _PNG_COLOURS.get(mode, ()), []
        if suffix in (".tif", ".tiff"):
            with open_raster(path) as ds:
                return ds.read(), band_colours(ds), list(ds.descriptions)
        if suffix == ".npy":
            arr = np.load(path, mmap_mode="r")
            return np.asarray(arr[None] if arr.ndim == 2 else arr), (), []
        import h5py

        with h5py.File(path, "r") as f:
            if h5_key not in f:
                keys = list(f.keys())
                if len(keys) != 1:
                    raise DatasetError(f"{path} has no dataset {h5_key!r} (it has {keys})")
                h5_key = keys[0]
            arr = np.asarray(f[h5_key])
        if arr.ndim == 3 and arr.shape[-1] < arr.shape[0]:
            arr = np.moveaxis(arr, -1, 0)  # L4S stores (H, W, C)
        return (arr[None] if arr.ndim == 2 else arr), (), []
    except (DatasetError, RasterIOError):
        raise
    except Exception as exc:
        raise DatasetError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc


def _to_chw(arr: npt.NDArray[Any], n_bands: int, colours: tuple[str, ...], path: Path
            ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
    """(n_bands, H, W) data bands, and where the alpha band is not 0 (None without alpha).

    (H, W, C) .npy arrays are transposed; an alpha band is dropped (its zeros are nodata).
    """
    if arr.shape[0] != n_bands and arr.ndim == 3 and arr.shape[-1] == n_bands:
        arr = np.moveaxis(arr, -1, 0)
    opaque = None
    if len(colours) == arr.shape[0] and "alpha" in colours:
        opaque = arr[colours.index("alpha")] != 0
        arr = arr[[i - 1 for i in data_bands(colours, arr.shape[0])]]
    if arr.shape[0] != n_bands:
        raise BandError(f"{path} has {arr.shape[0]} data band(s) but {n_bands} band name(s) "
                        "are used; give one name per band with --band-names")
    return arr, opaque


def _mask_labels(arr: npt.NDArray[Any], mode: str, path: Path,
                 landslide_values: Sequence[int] | None = None) -> npt.NDArray[np.uint8]:
    m = arr[0] if arr.ndim == 3 else arr
    if m.ndim != 2:
        raise DatasetError(f"mask {path} has shape {arr.shape}; expected (H, W) or (C, H, W)")
    if landslide_values is not None:
        return labels_from_values(m, landslide_values, path, "mask")
    if mode == "auto":
        mode = "labels" if (m == LANDSLIDE).any() else "threshold"
    if mode == "threshold":
        check_threshold_mask(m, path)
        return (m > 127).astype(np.uint8)
    return labels_from_values(m, None, path, "mask")


def _default_band_names(layout: str, first: Path, arr: npt.NDArray[Any],
                        colours: tuple[str, ...], descriptions: list[str | None]) -> list[str]:
    if layout == "l4s-h5" and arr.shape[0] == len(L4S_BAND_NAMES):
        return list(L4S_BAND_NAMES)
    names = file_band_names(descriptions, colours, arr.shape[0])
    if names is not None:
        return names
    n = len(data_bands(colours, arr.shape[0]))
    raise BandError(f"cannot tell the names of the {n} band(s) of {first} (no band "
                    f"descriptions or colour interpretation); {naming_hint(n)}")


def _digest(files: Sequence[Path], root: Path) -> str:
    """sha256 over the relative paths and contents of ``files``, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(str(p.relative_to(root)).encode())
        h.update(bytes.fromhex(sha256_file(p)))
    return h.hexdigest()


@dataclass(frozen=True)
class _PatchFormat:
    """What every imported patch must look like: the first patch's bands, size and dtype."""

    names: list[str]
    size: int
    dtype: np.dtype[Any]
    nodata: float | None


def import_patches(
    src: str | Path,
    out: str | Path,
    band_names: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    layout: str = "auto",
    mask_mode: str = "auto",
    overwrite: bool = False,
    landslide_values: Sequence[int] | None = None,
    as_split: str | None = None,
) -> ImportResult:
    """Import a pre-chipped dataset (image and mask files) as a dataset folder.

    Args:
        src: Source folder (see the module docstring for the layouts and the pairing rule).
        out: Output dataset folder.
        band_names: Names of the image bands (defaults: :data:`L4S_BAND_NAMES` for 14-band
            Landslide4Sense HDF5, else band descriptions or colour interpretation, so
            red,green,blue for RGB(A) PNGs).
        val_fraction: Share of the training patches carved out as validation when the source
            has no validation folder (0 for none).
        seed: Seed of the validation carve-out.
        layout: ``auto``, ``folders`` or ``l4s-h5``.
        mask_mode: ``auto``, ``threshold`` (landslide where > 127) or ``labels`` (0/1/255).
        overwrite: Replace an existing output folder.
        landslide_values: Mask values that mean landslide (others but 255 are background);
            replaces ``mask_mode``.
        as_split: Put every patch into this split (``train``, ``val`` or ``test``) whatever
            the source folders say, with no validation carve-out.

    Returns:
        An :class:`ImportResult`.
    """
    _check_options(val_fraction, mask_mode, landslide_values, as_split)
    rule = (mask_mode, None if landslide_values is None else tuple(landslide_values))
    root = Path(src)
    layout, pairs = discover_pairs(root, layout)
    items = [(s, img, mask) for s in SPLITS for img, mask in pairs.get(s, [])]
    fmt = _patch_format(items[0][1], layout, band_names)
    with DatasetWriter(out, len(items), fmt.names, fmt.dtype, fmt.size, fmt.nodata,
                       overwrite) as writer:
        for _, img_path, mask_path in track(items, description="import"):
            writer.add(*_read_pair(img_path, mask_path, fmt, rule),
                       source=str(img_path.relative_to(root)))
        splits = [as_split or s for s, _, _ in items]
        carved = (0 if "val" in pairs or as_split
                  else _carve_validation(splits, val_fraction, seed))
        files = [p for _, img, mask in items for p in (img, mask) if p is not None]
        report = _report(root, layout, pairs, splits, files, fmt, val_fraction, seed)
        report["carved_val"] = carved
        report["split"]["as_split"] = as_split
        meta = {"split": report["split"], "leakage": report["leakage"],
                "sources": report["sources"],
                "import": {"layout": layout, "mask_mode": mask_mode,
                           "landslide_values": rule[1]}}
        ds = writer.finish(splits, meta, report=report)
    warn_nonfinite_patches(ds)
    log.info("imported %d patches from %s into %s", len(ds), root, ds.path)
    return ImportResult(dataset=ds,
                        report=json.loads((ds.path / "report.json").read_text(encoding="utf-8")))


def _check_options(val_fraction: float, mask_mode: str,
                   landslide_values: Sequence[int] | None, as_split: str | None) -> None:
    """Refuse bad import options before anything is read."""
    if not 0 <= val_fraction < 1:
        raise DatasetError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if mask_mode not in MASK_MODES:
        raise DatasetError(f"unknown mask mode {mask_mode!r}; use one of {', '.join(MASK_MODES)}")
    if landslide_values is not None and mask_mode != "auto":
        raise DatasetError("give either --mask-mode or --landslide-values, not both")
    if as_split is not None and as_split not in SPLITS:
        raise DatasetError(f"--as-split must be one of {', '.join(SPLITS)}, got {as_split!r}")


def _patch_format(first: Path, layout: str, band_names: Sequence[str] | None) -> _PatchFormat:
    """Band names, size, dtype and nodata of the dataset, from the first image and the names."""
    arr, colours, desc = _read_array(first, "img")
    names = (list(validate_band_names(band_names)) if band_names is not None
             else _default_band_names(layout, first, arr, colours, desc))
    img, _ = _to_chw(arr, len(names), colours, first)
    _, h, w = img.shape
    if h != w:
        raise DatasetError(f"patches must be square; {first} is {h} x {w}")
    nodata: float | None = None
    if first.suffix.lower() in (".tif", ".tiff"):
        nodata = raster_info(first).nodata
    return _PatchFormat(names, h, img.dtype, nodata)


def _read_pair(img_path: Path, mask_path: Path | None, fmt: _PatchFormat,
               rule: tuple[str, tuple[int, ...] | None]
               ) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint8]]:
    """(C, P, P) image in the dataset dtype and (P, P) labels of one patch (checked).

    ``rule`` is (mask mode, landslide values or None). Labels are 255 where the alpha band is
    0 or a band is NaN or infinite.
    """
    arr, colours, _ = _read_array(img_path, "img")
    img, opaque = _to_chw(arr, len(fmt.names), colours, img_path)
    marr, _, _ = _read_array(mask_path if mask_path is not None else img_path, "mask")
    lab = _mask_labels(marr, rule[0], mask_path or img_path, rule[1])
    p = fmt.size
    if img.shape[1:] != (p, p) or lab.shape != (p, p):
        raise DatasetError(f"{img_path} is {img.shape[1]} x {img.shape[2]} px with "
                           f"mask {lab.shape}; every patch must be {p} x {p}")
    invalid = ~opaque if opaque is not None else np.zeros((p, p), dtype=bool)
    if img.dtype.kind == "f":
        invalid |= ~np.isfinite(img).all(axis=0)
    if invalid.any():
        lab = np.where(invalid, np.uint8(IGNORE), lab).astype(np.uint8)
    return img.astype(fmt.dtype, copy=False), lab


def _carve_validation(splits: list[str], val_fraction: float, seed: int) -> int:
    """Turn ``round(val_fraction * n_train)`` seeded training patches into validation ones.

    Returns:
        The number of patches carved out (``splits`` is changed in place).
    """
    train = [i for i, s in enumerate(splits) if s == "train"]
    carved = round(val_fraction * len(train))
    for j in np.random.default_rng(seed).permutation(len(train))[:carved]:
        splits[train[int(j)]] = "val"
    return carved


def _report(root: Path, layout: str, pairs: dict[str, list[tuple[Path, Path | None]]],
            splits: Sequence[str], files: Sequence[Path], fmt: _PatchFormat,
            val_fraction: float, seed: int) -> dict[str, Any]:
    """The JSON report of an import: layout, split, (unauditable) leakage, sources."""
    has_val = "val" in pairs
    split_meta = {"method": "imported", "source_splits": sorted(pairs, key=SPLITS.index),
                  "val_from": "folder" if has_val else "train",
                  "val_fraction": None if has_val else val_fraction, "seed": seed}
    leakage: dict[str, Any] = {
        "definition": "share of a split's patches that touch or overlap a training patch",
        "note": "imported patches carry no scene position; leakage between them cannot be "
                "audited",
    }
    for s in SPLITS:
        leakage[s] = {"patches": splits.count(s), "touching_train": None, "share": None}
    sources = [{"path": str(root.resolve()), "layout": layout, "files": len(files),
                "sha256": _digest(files, root)}]
    return {"layout": layout, "split": split_meta, "leakage": leakage, "sources": sources,
            "bands": fmt.names, "patch_size": fmt.size}
