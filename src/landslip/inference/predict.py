"""Whole-scene prediction: a model bundle and a GeoTIFF in, georeferenced maps and polygons out.

:func:`predict_scene` loads the bundle (band set, normalisation, threshold), matches the image's
bands by name (band descriptions, or ``band_names`` given explicitly), checks everything before
writing anything, then streams the scene (:mod:`landslip.inference.stream`) into

* ``probability.tif``: landslide probability, tiled and DEFLATE-compressed. ``uint8`` (default):
  :func:`landslip.encoding.encode_probability`, ``round(p * 254)``, so 0 = 0.0 and 254 = 1.0,
  with 255 = nodata (tag ``PROBABILITY_SCALE`` = 1/254), the same codes as evaluation's
  ``probabilities.npy``; or ``float32`` 0-1 with NaN as nodata.
* ``landslides.tif``: uint8 mask, 1 = landslide, 0 = none, 255 = nodata
  (:func:`landslip.encoding.mask_from_probability`: ``p >= threshold`` on the float32
  probabilities, compared in float64, the rule ``landslip evaluate`` applies).
* ``landslides.gpkg``: one polygon per landslide (8-connected region) traced from the finished
  mask (:mod:`landslip.inference.vectorize`) with ``id``, ``area_m2``, ``pixels``,
  ``mean_probability``; optionally ``landslides.geojson`` in EPSG:4326.
* ``prediction.json``: what was run (bundle, image, plan, threshold, counts, timings).

All outputs lie on the input grid and CRS and are written atomically. A pixel that is nodata
in any band the model needs is nodata in every output.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from landslip import __version__
from landslip.devices import resolve_device
from landslip.encoding import (
    IGNORE,
    LABELS_TAG,
    LANDSLIDE,
    PROBABILITY_NODATA,
    PROBABILITY_SCALE,
    decode_probability,
    encode_probability,
    mask_from_probability,
)
from landslip.errors import BandError, InputError
from landslip.grid import Grid
from landslip.inference.min_area import drop_small_landslides
from landslip.inference.publish import publish_prediction
from landslip.inference.sliding import RowBand, SlidingPlan, make_plan
from landslip.inference.stream import BackgroundSink, InputSpec, StreamStats, stream_predict
from landslip.inference.terrain_filter import add_mean_slope
from landslip.inference.vectorize import MaskTracer, polygonize_mask, write_polygons
from landslip.io.atomic import write_json_atomic
from landslip.io.checks import declare_nodata
from landslip.io.cog import LABELS, probability_style
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterInfo, RasterWriter, open_raster, raster_info
from landslip.models.engine import (
    Engine,
    TorchEngine,
    check_engine_options,
    create_engine,
    default_threads,
)
from landslip.spectral.bands import BandSet
from landslip.spectral.extras import ExtraSpec, ModelInputs, model_inputs
from landslip.spectral.naming import band_slots, data_bands, naming_hint

if TYPE_CHECKING:
    from torch import nn

    from landslip.models.bundle import Bundle

__all__ = [
    "MapWriter",
    "PredictOptions",
    "PredictResult",
    "SceneOutputs",
    "ScenePass",
    "engine_fields",
    "finish_prediction",
    "match_bands",
    "predict_image",
    "predict_scene",
    "scene_outputs",
]

log = logging.getLogger(__name__)

ProbabilityDtype = Literal["uint8", "float32"]
GDAL_CACHE_MB = 64
"""GDAL block cache during prediction (its default, 5% of RAM, would grow with the scene)."""


@dataclass(frozen=True)
class PredictOptions:
    """How a scene is predicted (the options of ``landslip predict``).

    Attributes:
        threshold: Probability at or above which a pixel is a landslide (0 < t < 1).
        window: Largest prediction window, pixels; None: the engine's measured best
            (:attr:`landslip.models.engine.Engine.default_window`).
        overlap: Least overlap between windows, pixels (blended with raised-cosine ramps).
        batch_size: Windows per forward pass; default 1 on the CPU (larger batches are no
            faster there and cost memory), 4 on a GPU.
        tta: Average over the 8 flips/90-degree rotations (8x the compute).
        min_area: Drop polygons below this area, square metres.
        geojson: Also write ``landslides.geojson`` in EPSG:4326.
        probability_dtype: ``uint8`` (0-254, 255 nodata) or ``float32`` (NaN nodata).
        device: Torch device (:func:`landslip.devices.resolve_device`); default CUDA when
            available, else the CPU.
        engine: ``auto`` (ONNX Runtime on the CPU, PyTorch on CUDA), ``torch`` or ``onnx``
            (:func:`landslip.models.engine.create_engine`).
        threads: Intra-op threads of the engine; None: all cores.
        max_window_rows: Only predict this many window rows (benchmarks); rows below stay
            nodata.
        polygons: Trace polygons (off for benchmarks of the raster part).
        html: Also write the self-contained map page ``map.html``.
        min_slope: Drop polygons whose mean slope is below this many degrees (needs the
            terrain in ``spec.extras``); None keeps all.
    """

    threshold: float = 0.5
    window: int | None = None
    overlap: int = 64
    batch_size: int | None = None
    tta: bool = False
    min_area: float = 0.0
    geojson: bool = False
    probability_dtype: ProbabilityDtype = "uint8"
    device: str | None = None
    engine: str = "auto"
    threads: int | None = None
    max_window_rows: int | None = None
    polygons: bool = True
    html: bool = False
    min_slope: float | None = None

    def check(self) -> None:
        """Refuse bad option values (before anything is written).

        Raises:
            InputError: Naming the option and the values it accepts.
        """
        if self.probability_dtype not in ("uint8", "float32"):
            raise InputError(f"--probability-dtype must be uint8 or float32, got "
                             f"{self.probability_dtype!r}")
        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"--threshold must lie strictly between 0 and 1, got "
                             f"{self.threshold}")
        if self.min_area < 0:
            raise InputError(f"--min-area must be >= 0 square metres, got {self.min_area}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.min_slope is not None and not 0 <= self.min_slope < 90:
            raise InputError(f"--min-slope must be between 0 and 90 degrees, got "
                             f"{self.min_slope}")
        check_engine_options(self.engine, self.threads)


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_scene` wrote and found.

    Attributes:
        probability: Path of ``probability.tif``.
        mask: Path of ``landslides.tif``.
        polygons: Path of ``landslides.gpkg``.
        geojson: Path of ``landslides.geojson`` or None.
        report: Path of ``prediction.json``.
        n_polygons: Landslide polygons written (after the ``min_area`` filter).
        landslide_pixels: Pixels in the mask with value 1.
        valid_pixels: Pixels that are not nodata.
        threshold: Probability threshold used.
        plan: The window plan.
        stats: Streaming statistics (windows, timings).
        seconds: Total wall time, including polygons.
        engine: The engine's name (``onnx`` or ``torch``).
        threads: The engine's intra-op threads.
    """

    probability: Path
    mask: Path
    polygons: Path
    geojson: Path | None
    report: Path
    n_polygons: int
    landslide_pixels: int
    valid_pixels: int
    threshold: float
    plan: SlidingPlan
    stats: StreamStats
    seconds: float
    engine: str = ""
    threads: int | None = None


def scene_inputs(bundle: Bundle, info: RasterInfo, band_names: Sequence[str] | None,
                 extras: Sequence[ExtraSpec | str], need_slope: bool, strict: bool
                 ) -> tuple[ModelInputs, InputSpec]:
    """Match an image to a bundle: its bands, the input spec and the drift check.

    Args:
        bundle: The loaded bundle.
        info: The image (nodata already declared).
        band_names: Names of the image bands overriding the descriptions, or None.
        extras: The ``--extra`` rasters (``[]`` for none).
        need_slope: Whether a slope is needed (``--min-slope``).
        strict: Refuse an image far outside the training data instead of warning.

    Returns:
        The split of bands between image and extras, and the spec of the image's bands
        (``extras`` not attached: the caller opens them where they are read).
    """
    from landslip.evaluation.drift import check_image_input

    inputs = model_inputs(bundle.band_set, info, band_names, extras, need_slope)
    indexes = match_bands(info, inputs.image_set, band_names)
    spec = InputSpec(band_set=bundle.band_set, band_indexes=indexes, mean=tuple(bundle.mean),
                     std=tuple(bundle.std), nodata=info.nodata, masked=info.masked)
    # Only the bands read from the image are checked; the others come from --extra.
    check_image_input(bundle.meta.input_profile, info, indexes, inputs.image_set.required,
                      strict)
    return inputs, spec


def match_bands(
    info: RasterInfo, band_set: BandSet, band_names: Sequence[str] | None = None
) -> tuple[int, ...]:
    """Find the image band of each raw band the band set needs.

    Args:
        info: The image.
        band_set: The model's band set.
        band_names: One name per image band, in order, overriding the band descriptions.

    Returns:
        1-based band indexes, one per ``band_set.required``.

    Raises:
        BandError: When names are missing, duplicated or of the wrong count, or a needed band
            is absent; the message lists what is needed and what the image has.
    """
    needed = ", ".join(band_set.required)
    names = band_slots(info, band_names)
    if not any(names):
        n_data = len(data_bands(info.colorinterp, info.count))
        raise BandError(f"the bands of {info.path} have no names (band descriptions or colour "
                        f"interpretation); {naming_hint(n_data, band_set.required)}")
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise BandError(f"band name(s) {', '.join(dupes)} appear twice in {info.path}")
    missing = [b for b in band_set.required if b not in names]
    if missing:
        have = ", ".join(n or f"(unnamed band {i})" for i, n in enumerate(names, start=1))
        raise BandError(
            f"the model's band set {band_set.spec!r} ({', '.join(band_set.names)}) needs "
            f"band(s) {needed}, but {info.path} has {have}: missing {', '.join(missing)}. "
            "Use an image with these bands, or name its bands with --band-names"
        )
    return tuple(names.index(b) + 1 for b in band_set.required)


@dataclass(frozen=True)
class SceneOutputs:
    """The paths of one scene's outputs (see the module docstring)."""

    probability: Path
    mask: Path
    polygons: Path
    geojson: Path | None
    report: Path


def scene_outputs(out_dir: Path, geojson: bool) -> SceneOutputs:
    """The output paths in ``out_dir`` (``landslides.geojson`` only with ``geojson``)."""
    return SceneOutputs(
        probability=out_dir / "probability.tif",
        mask=out_dir / "landslides.tif",
        polygons=out_dir / "landslides.gpkg",
        geojson=out_dir / "landslides.geojson" if geojson else None,
        report=out_dir / "prediction.json",
    )


class MapWriter:
    """Writes finished row bands of probabilities as ``probability.tif`` and ``landslides.tif``.

    A context manager (both files are written atomically, together); :meth:`write` is the sink
    of :func:`~landslip.inference.stream.stream_predict`. The probability codes and the mask
    come from :mod:`landslip.encoding`, so they equal evaluation's ``probabilities.npy`` and
    ``masks.npy`` for the same float32 probabilities.

    Args:
        probability: Path of the probability GeoTIFF.
        mask: Path of the mask GeoTIFF.
        grid: The scene grid.
        threshold: Decision threshold (:func:`~landslip.encoding.mask_from_probability`).
        probability_dtype: ``uint8`` (:func:`~landslip.encoding.encode_probability`) or
            ``float32`` (NaN nodata).
        trace: Also trace the landslide polygons as the rows are written (:attr:`tracer`),
            so the finished mask need not be read again.

    Attributes:
        tracer: The :class:`~landslip.inference.vectorize.MaskTracer` (with ``trace``) or None.
    """

    def __init__(self, probability: Path, mask: Path, grid: Grid, threshold: float,
                 probability_dtype: ProbabilityDtype = "uint8", trace: bool = False) -> None:
        self.threshold = threshold
        self.uint8 = probability_dtype == "uint8"
        self.tracer = MaskTracer(grid) if trace else None
        tags = {"LANDSLIP_VERSION": __version__}
        self._prob = RasterWriter(
            probability, grid, 1, probability_dtype,
            PROBABILITY_NODATA if self.uint8 else float("nan"), ["landslide probability"],
            dict(tags, PROBABILITY_SCALE=str(1 / PROBABILITY_SCALE) if self.uint8 else "1"),
            style=probability_style(probability_dtype),
        )
        self._mask = RasterWriter(
            mask, grid, 1, "uint8", IGNORE, ["landslide mask"],
            dict(tags, THRESHOLD=repr(threshold), LANDSLIP_LABELS=LABELS_TAG), style=LABELS,
        )
        self._stack = ExitStack()
        self.landslide_pixels = 0
        self.valid_pixels = 0

    def __enter__(self) -> MapWriter:
        with ExitStack() as stack:
            stack.enter_context(self._prob)
            stack.enter_context(self._mask)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Finish both files; on success their COG copies run side by side (one core each).

        If one of the two copies fails, the other file is removed too.
        """
        if exc_type is not None:
            self._stack.__exit__(exc_type, exc, tb)
            return
        self._stack.pop_all()

        def finish(writer: RasterWriter) -> None:
            writer.__exit__(None, None, None)

        with ThreadPoolExecutor(max_workers=1) as pool:
            other = pool.submit(finish, self._mask)
            try:
                finish(self._prob)
            except BaseException:
                if other.exception() is None:
                    self._mask.path.unlink(missing_ok=True)
                raise
            if other.exception() is not None:
                self._prob.path.unlink(missing_ok=True)
            other.result()

    def write(self, band: RowBand) -> None:
        """Write one row band (float32 probabilities and validity) to both files."""
        p, valid = band.prob, band.valid
        if self.uint8:
            codes = encode_probability(p, valid)
            self._prob.write(codes, band.window)
        else:
            self._prob.write(np.where(valid, p, np.float32(np.nan)).astype(np.float32),
                             band.window)
        m = mask_from_probability(p, self.threshold, valid)
        self._mask.write(m, band.window)
        landslide = m == LANDSLIDE
        self.landslide_pixels += int(np.count_nonzero(landslide))
        self.valid_pixels += int(np.count_nonzero(valid))
        if self.tracer is not None:  # probabilities as the file holds them
            held = decode_probability(codes) if self.uint8 else p
            self.tracer.add(band.window.row_off, landslide, held)


def predict_image(
    predictor: Engine | nn.Module,
    spec: InputSpec,
    image: str | Path,
    out_dir: str | Path,
    options: PredictOptions | None = None,
    *,
    report_extra: dict[str, Any] | None = None,
) -> PredictResult:
    """Predict an image with a ready model and input spec (the bundle-free core).

    Args:
        predictor: A prediction :class:`~landslip.models.engine.Engine` (left open), or an
            ``nn.Module`` mapping float32 (N, C, H, W) to logits (N, 1, H, W) with
            ``in_channels`` and ``required_multiple`` attributes, run by a
            :class:`~landslip.models.engine.TorchEngine` on ``options.device`` with
            ``options.threads``.
        spec: Band indexes and normalisation for this image.
        image: The GeoTIFF (any GDAL raster) to map.
        out_dir: Output folder (created when missing).
        options: The :class:`PredictOptions` (threshold, windows, outputs, device).
        report_extra: Extra fields for ``prediction.json``.

    Returns:
        The :class:`PredictResult`.

    Raises:
        InputError: For a bad option (nothing is written).
    """
    opts = options if options is not None else PredictOptions()
    opts.check()
    if isinstance(predictor, Engine):
        return _predict_with(predictor, spec, image, out_dir, opts, report_extra)
    with TorchEngine(predictor, resolve_device(opts.device),
                     opts.threads or default_threads()) as engine:
        return _predict_with(engine, spec, image, out_dir, opts, report_extra)


def _predict_with(engine: Engine, spec: InputSpec, image: str | Path, out_dir: str | Path,
                  opts: PredictOptions, report_extra: dict[str, Any] | None) -> PredictResult:
    """:func:`predict_image` with the engine made and the options checked."""
    start = time.perf_counter()
    info = raster_info(image)
    out = scene_outputs(Path(out_dir), opts.geojson)
    opts.check()
    if opts.min_slope is not None and (spec.extras is None or not spec.extras.has_slope):
        raise InputError("--min-slope needs the terrain: add --extra dem=DEM.tif")
    if (opts.geojson or opts.html) and info.grid.crs is None:
        what = "--geojson" if opts.geojson else "--html"
        raise InputError(f"{image} has no CRS, so {what} (EPSG:4326) cannot be written; "
                         f"assign a CRS first (gdal_edit.py -a_srs) or drop {what}")
    window = opts.window if opts.window is not None else engine.default_window
    plan = make_plan(info.grid.height, info.grid.width, window, opts.overlap,
                     engine.required_multiple)
    batch_size = opts.batch_size or (4 if engine.device.type == "cuda" else 1)
    log.info("predicting %d x %d pixels in %d window(s) of %d x %d (stride %s) with %s",
             info.grid.height, info.grid.width, plan.n_windows, plan.win_h, plan.win_w,
             plan.stride, engine.description)
    with gdal_env(GDAL_CACHE_MB), open_raster(image) as ds, MapWriter(
        out.probability, out.mask, info.grid, opts.threshold, opts.probability_dtype,
        trace=opts.polygons,
    ) as writer, BackgroundSink(writer.write, pending=4) as sink:
        stats = stream_predict(ds, engine, spec, plan, sink, batch_size=batch_size,
                               tta=opts.tta, max_window_rows=opts.max_window_rows)
    run = ScenePass(info=info, spec=spec, opts=opts, plan=plan, stats=stats,
               batch_size=batch_size, engine=engine_fields(engine), start=start)
    return finish_prediction(out, run, writer, report_extra)


@dataclass(frozen=True)
class ScenePass:
    """What a finished raster pass of one scene knows (for polygons and the report)."""

    info: RasterInfo
    spec: InputSpec
    opts: PredictOptions
    plan: SlidingPlan
    stats: StreamStats
    batch_size: int
    engine: dict[str, Any]
    start: float


def engine_fields(engine: Engine) -> dict[str, Any]:
    """The engine's fields of ``prediction.json`` (device, name, threads, description)."""
    return {"device": str(engine.device), "engine": engine.name, "threads": engine.threads,
            "engine_description": engine.description, "max_window": engine.default_window}


def finish_prediction(out: SceneOutputs, run: ScenePass, writer: MapWriter,
                      report_extra: dict[str, Any] | None) -> PredictResult:
    """Polygons, ``prediction.json`` and the published files of written maps."""
    opts, spec = run.opts, run.spec
    n_polygons, removed = 0, 0
    if opts.polygons:
        with gdal_env(GDAL_CACHE_MB):
            traced = (writer.tracer.polygons() if writer.tracer is not None
                      else polygonize_mask(out.mask, out.probability))
            polys = drop_small_landslides(traced, out.mask, opts.min_area)
            if spec.extras is not None and spec.extras.has_slope:
                polys = add_mean_slope(polys, spec.extras, out.mask, opts.min_slope)
            write_polygons(polys, out.polygons, out.geojson)
        n_polygons, removed = len(polys.frame), polys.dropped_pixels
    result = PredictResult(
        probability=out.probability, mask=out.mask, polygons=out.polygons,
        geojson=out.geojson, report=out.report, n_polygons=n_polygons,
        landslide_pixels=writer.landslide_pixels - removed, valid_pixels=writer.valid_pixels,
        threshold=opts.threshold, plan=run.plan, stats=run.stats,
        seconds=time.perf_counter() - run.start, engine=run.engine["engine"],
        threads=run.engine["threads"],
    )
    report = _report(result, run)
    report.update(report_extra or {})
    write_json_atomic(out.report, report)
    publish_prediction(out.report.parent, html=opts.html)  # stac-item.json, map.html
    return result


def _report(r: PredictResult, run: ScenePass) -> dict[str, Any]:
    """The ``prediction.json`` document of a finished prediction."""
    info, spec, opts, eng = run.info, run.spec, run.opts, run.engine
    return {
        "format": "landslip-prediction", "version": 1, "landslip_version": __version__,
        "image": str(info.path), "height": info.grid.height, "width": info.grid.width,
        "crs": info.grid.crs.to_string() if info.grid.crs is not None else None,
        "band_set": spec.band_set.spec, "band_indexes": list(spec.band_indexes),
        "threshold": opts.threshold, "window": [r.plan.win_h, r.plan.win_w],
        "stride": list(r.plan.stride), "overlap": opts.overlap, "windows": r.plan.n_windows,
        "max_window": opts.window if opts.window is not None else eng["max_window"],
        "skipped_windows": r.stats.skipped, "batch_size": run.batch_size, "tta": opts.tta,
        "device": eng["device"], "engine": eng["engine"], "threads": eng["threads"],
        "engine_description": eng["engine_description"],
        "probability_dtype": opts.probability_dtype,
        "min_area_m2": opts.min_area, "landslide_pixels": r.landslide_pixels,
        "valid_pixels": r.valid_pixels, "polygons": r.n_polygons,
        "seconds": round(r.seconds, 3), "model_seconds": round(r.stats.model_seconds, 3),
    }


def predict_scene(
    bundle_path: str | Path,
    image: str | Path,
    out_dir: str | Path,
    *,
    window: int | None = None,
    overlap: int = 64,
    batch_size: int | None = None,
    tta: bool = False,
    threshold: float | None = None,
    min_area: float = 0.0,
    geojson: bool = False,
    band_names: Sequence[str] | None = None,
    probability_dtype: ProbabilityDtype = "uint8",
    device: str | None = None,
    engine: str = "auto",
    threads: int | None = None,
    max_window_rows: int | None = None,
    polygons: bool = True,
    html: bool = False,
    extras: Sequence[ExtraSpec | str] = (),
    min_slope: float | None = None,
    nodata: float | None = None,
    strict: bool = False,
) -> PredictResult:
    """Map landslides over a whole scene with a trained model bundle.

    Args:
        bundle_path: Run folder, bundle folder or ``model.json`` (``load_bundle``).
        image: Multiband image with named bands (or ``band_names``); nodata honoured.
        out_dir: Output folder.
        threshold: Probability threshold; default the bundle's.
        band_names: One name per image band, overriding the descriptions.
        extras: Extra rasters for the bands the image lacks (``--extra``, as in ``prepare``);
            with a DEM every polygon gets ``mean_slope``.
        min_slope: Drop polygons whose mean slope is below this many degrees (needs a DEM).
        window, overlap, batch_size, tta, min_area, geojson, probability_dtype, device,
            engine, threads, max_window_rows, polygons, html: As in :class:`PredictOptions`.
        nodata: Nodata value of the image when the file lacks the tag (``--nodata``).
        strict: Refuse an image far outside the training data
            (:mod:`landslip.evaluation.drift`) instead of warning.

    Returns:
        The :class:`PredictResult`.

    Raises:
        ModelError: For a missing or broken bundle, or ``engine="onnx"`` without onnxruntime.
        BandError: When the image lacks a band the model needs (nothing is written).
        InputError: For a bad option (nothing is written).
        DriftError: With ``strict``, for an image far outside the training data.
    """
    from landslip.models.bundle import load_bundle

    info = declare_nodata(raster_info(image), nodata)  # fail on a missing image first
    check_engine_options(engine, threads)
    bundle = load_bundle(bundle_path, device=str(resolve_device(device)), weights="lazy")
    inputs, spec = scene_inputs(bundle, info, band_names, extras, min_slope is not None, strict)
    spec = replace(spec, extras=inputs.extras)
    options = PredictOptions(
        threshold=bundle.threshold if threshold is None else float(threshold), window=window,
        overlap=overlap, batch_size=batch_size, tta=tta, min_area=min_area, geojson=geojson,
        probability_dtype=probability_dtype, device=device, engine=engine, threads=threads,
        max_window_rows=max_window_rows, polygons=polygons, html=html, min_slope=min_slope,
    )
    options.check()
    report_extra: dict[str, Any] = {"bundle": str(bundle.path)}
    if inputs.extras is not None:
        report_extra.update(extras=inputs.extras.describe(), min_slope=min_slope)
    with inputs.extras or nullcontext(), create_engine(bundle, engine, device, threads) as chosen:
        result = predict_image(chosen, spec, image, out_dir, options, report_extra=report_extra)
    if result.valid_pixels == 0:
        log.warning("%s: every pixel the model needs is nodata, so the maps hold nodata only; "
                    "check the nodata value (--nodata) and the image", image)
    return result
