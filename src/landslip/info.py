"""``landslip info PATH``: what a landslip artefact is, in a few lines.

:func:`describe` recognises a dataset folder (``dataset.json``), a training run folder
(``bundle/model.json``), a model bundle (``model.json``), an exported ONNX model, a prediction
folder (``prediction.json``), an evaluation folder (``report.json``), a synthetic scene
(``scene.json``), the landslide polygons (GeoPackage, GeoJSON) and any raster GDAL reads (a
landslip GeoTIFF says what it holds through its tags), from the folder or from its main file.
Each description reads only metadata (JSON documents, raster and vector headers), never pixels
or weights, so it is instant on any size.
Anything else is an :class:`~landslip.errors.InputError` (one line, exit 2 in the CLI).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from landslip.errors import InputError, LandslipError
from landslip.formats import read_document
from landslip.grid import crs_name

__all__ = ["describe"]

log = logging.getLogger(__name__)


def _grid_text(height: int, width: int, res: Any, crs: Any) -> str:
    size = f"{abs(float(res[0])):g} x {abs(float(res[1])):g}" if res is not None else "?"
    return f"{height} x {width} px, pixel {size}, {crs_name(crs)}"


def describe_raster(path: Path) -> list[str]:
    """A raster: grid, bands, nodata, COG layout, and what landslip wrote into it."""
    from rasterio.errors import NotGeoreferencedWarning

    from landslip.io.cog import check_cog
    from landslip.io.raster import open_raster

    with warnings.catch_warnings(), open_raster(path) as ds:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        if ds.count < 1:  # GDAL opens some JSON (STAC items) as band-less datasets
            raise InputError(f"{path} has no raster bands")
        tags = ds.tags()
        lines = [f"raster {path} ({ds.driver})",
                 f"  grid: {_grid_text(ds.height, ds.width, ds.res, ds.crs)}",
                 f"  bands: {ds.count} x {ds.dtypes[0]}, nodata {ds.nodata}: " + ", ".join(
                     f"{d or '(unnamed)'} [{c.name}]"
                     for d, c in zip(ds.descriptions, ds.colorinterp, strict=True))]
        if ds.scales[0] != 1.0 or ds.offsets[0] != 0.0:
            lines.append(f"  value = stored x {ds.scales[0]:g} + {ds.offsets[0]:g}"
                         f" ({ds.units[0] or 'no unit'})")
        overviews = ds.overviews(1)
    if path.suffix.lower() in (".tif", ".tiff"):
        check = check_cog(path)
        state = "valid" if check.valid else "not valid (" + "; ".join(check.errors) + ")"
        lines.append(f"  Cloud-Optimized GeoTIFF: {state}; overviews "
                     f"{', '.join(f'1/{f}' for f in overviews) or 'none'}")
    kind = [f"{k}={tags[k]}" for k in ("LANDSLIP_LABELS", "THRESHOLD", "PROBABILITY_SCALE",
                                        "PANSHARPEN_METHOD", "LANDSLIP_VERSION") if k in tags]
    if kind:
        lines.append("  landslip: " + ", ".join(kind))
    return lines


def describe_vector(path: Path) -> list[str]:
    """A vector file (the landslide polygons): layer, features, CRS, spatial index."""
    import pyogrio

    try:
        meta = pyogrio.read_info(path)
    except Exception as exc:
        raise InputError(f"{path} is not a vector file GDAL reads ({exc})") from exc
    fast = meta.get("capabilities", {}).get("fast_spatial_filter")
    return [f"vector {path} ({meta['driver']}), layer {meta['layer_name']}",
            f"  {meta['features']} {meta['geometry_type']} feature(s), {meta['crs'] or 'no CRS'}"
            f"; spatial index {'yes' if fast else 'no'}",
            f"  fields: {', '.join(str(f) for f in meta['fields'])}"]


def describe_dataset(path: Path) -> list[str]:
    """A dataset folder: bands, patches per split, split method, provenance."""
    from landslip.dataset.folder import open_dataset

    ds = open_dataset(path)
    m = ds.meta
    counts = ", ".join(f"{s} {n}" for s, n in ds.counts.items())
    frac = m.get("landslide_fraction", {})
    share = ", ".join(f"{s} {100 * float(v):.1f} %" for s, v in frac.items() if v is not None)
    return [f"dataset {ds.path} (landslip-dataset v{m.get('version')})",
            f"  bands {', '.join(ds.band_names)} ({m.get('dtype')}, nodata {ds.nodata}); "
            f"patches {ds.patch_size} px: {counts}",
            f"  split {m.get('split', {}).get('method')}; landslide pixels {share or 'n/a'}",
            f"  CRS {crs_name(ds.crs) if ds.crs else 'none'}; fingerprint {ds.fingerprint[:16]}"]


def _bundle_lines(meta: Any, where: str) -> list[str]:
    t = meta.training
    best = t.get("best_val", {})
    params = ", ".join(f"{k} {v}" for k, v in meta.model_params.items())
    lines = [f"  model {meta.model} ({params or 'defaults'}), {meta.in_channels} input band(s): "
             f"band set {meta.band_set}; threshold {meta.threshold:g}"
             + (f"; patches of {meta.patch_size} px" if meta.patch_size else ""),
             f"  {where}; landslip {meta.landslip_version}"]
    if best:
        lines.append(f"  best validation F1 {float(best.get('f1', float('nan'))):.4f} at epoch "
                     f"{t.get('best_epoch')} of {t.get('epochs_completed')}")
    return lines


def describe_bundle(path: Path) -> list[str]:
    """A model bundle (folder or ``model.json``) or a run folder holding one."""
    from landslip.models.bundle import find_bundle, read_bundle_meta

    bundle = find_bundle(path)
    meta = read_bundle_meta(bundle)
    run = bundle.parent if bundle.name == "bundle" and path.is_dir() and bundle != path else None
    lines = [f"{'run' if run else 'model bundle'} {run or bundle}"]
    lines += _bundle_lines(meta, f"dataset {str(meta.dataset_fingerprint or '?')[:16]}")
    if run is not None:
        ckpts = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
        lines.append(f"  files: bundle/, {', '.join(ckpts) or 'no checkpoints'}"
                     + (", metrics.csv" if (run / "metrics.csv").is_file() else ""))
    return lines


def describe_onnx(path: Path) -> list[str]:
    """An exported ONNX model."""
    from landslip.models.onnx_meta import read_onnx_metadata

    meta = read_onnx_metadata(path)
    return [f"ONNX model {path} (exported by landslip {meta.exported_by})",
            *_bundle_lines(meta.bundle, f"sizes multiple of {meta.required_multiple}")]


def describe_prediction(path: Path) -> list[str]:
    """A prediction folder: input, grid, threshold, landslides, files."""
    from landslip.inference.folder import open_prediction
    from landslip.io.raster import raster_info

    pred = open_prediction(path)
    m = pred.meta
    g = raster_info(pred.probability).grid
    files = sorted(p.name for p in pred.path.iterdir()
                   if p.is_file() and not p.name.startswith("."))
    return [f"prediction {pred.path} of {pred.image}",
            f"  grid: {_grid_text(g.height, g.width, g.res, g.crs)}",
            f"  threshold {pred.threshold:g}: {m.get('polygons')} landslide(s), "
            f"{m.get('landslide_pixels')} of {m.get('valid_pixels')} valid pixels; "
            f"band set {m.get('band_set')}, bundle {pred.bundle or 'none'}",
            f"  files: {', '.join(files)}"]


def describe_evaluation(path: Path) -> list[str]:
    """An evaluation folder (``report.json``)."""
    from landslip.evaluation.report import read_report

    r = read_report(path)
    px = r.get("pixel", {})
    th = r.get("threshold", {})
    applied = th.get("value") if isinstance(th, dict) else th
    return [f"evaluation {path}",
            f"  split {r.get('dataset', {}).get('split')}, threshold {applied}: F1 "
            f"{px.get('f1', float('nan')):.4f}, IoU {px.get('iou', float('nan')):.4f}, "
            f"precision {px.get('precision', float('nan')):.4f}, "
            f"recall {px.get('recall', float('nan')):.4f}"]


def describe_scene(path: Path) -> list[str]:
    """A synthetic scene folder (``scene.json``)."""
    doc = read_document(path / "scene.json", expected="landslip-synthetic-scene", supported=1)
    ls = doc.get("landslides", {})
    return [f"synthetic scene {path} (seed {doc.get('seed')})",
            f"  {doc.get('size')} x {doc.get('size')} px PAN, {doc.get('crs')}; "
            f"{ls.get('count')} landslides, {100 * float(ls.get('fraction', 0)):.2f} % of pixels"]


_FOLDERS: list[tuple[str, Callable[[Path], list[str]]]] = [
    ("prediction.json", describe_prediction),
    ("dataset.json", describe_dataset),
    ("model.json", describe_bundle),
    ("bundle/model.json", describe_bundle),
    ("report.json", describe_evaluation),
    ("scene.json", describe_scene),
]

_MAIN_FILES = ("stac-item.json", "map.html")
"""Files that stand for the (prediction) folder that holds them."""


def describe(path: str | Path) -> list[str]:
    """Describe a landslip artefact in a few lines.

    Args:
        path: A dataset, run, bundle, prediction, evaluation or scene folder (or its JSON
            document), an exported ``.onnx`` model, a polygon file, or a raster.

    Returns:
        The lines of the description (the first names the kind and the path).

    Raises:
        InputError: When the path is missing or is no landslip artefact.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} not found; give a dataset, run, bundle or prediction folder, or "
                         "a GeoTIFF")
    if p.is_file() and (p.name in _MAIN_FILES or any(p.name == n for n, _ in _FOLDERS)):
        p = p.parent
    if p.is_dir():
        for name, func in _FOLDERS:
            if (p / name).is_file():
                return func(p)
    elif p.suffix.lower() == ".onnx":
        return describe_onnx(p)
    elif p.suffix.lower() in (".gpkg", ".geojson", ".shp", ".fgb"):
        return describe_vector(p)
    else:
        try:
            return describe_raster(p)
        except LandslipError:
            pass
    raise InputError(f"{p} is not a landslip artefact: give a dataset, run, bundle, prediction, "
                     "evaluation or scene folder, an .onnx model, a GeoPackage or a GeoTIFF")
