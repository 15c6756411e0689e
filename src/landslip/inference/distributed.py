"""Prediction over many scenes, and over strips of large scenes, on a dask.distributed cluster.

:func:`predict_many` maps several images into one output folder: ``OUT/<image stem>/`` holds
the outputs :func:`~landslip.inference.predict.predict_scene` writes for one image, and
``OUT/summary.json`` the per-scene counts, areas, timings and failures.

Without a cluster each scene is predicted in-process, one after the other. With a
:class:`distributed.Client` (a local cluster landslip starts, ``--workers N``, or an existing
scheduler, ``--scheduler ADDRESS``) the units of work are *strips*: contiguous ranges of window
rows of the single-process :class:`~landslip.inference.sliding.SlidingPlan`. A strip task runs
the window rows it owns plus the window rows above whose windows reach its output rows (the
blending overlap), through the same :func:`~landslip.inference.stream.stream_predict` (same
windows, batches, engine and threads, same float32 summation order), so its output rows are
bit-identical to the single-process run. Each task writes its rows atomically as a ``.npy`` part
(float32 probabilities, NaN = nodata) under ``OUT/parts/<scene>/``; the driver records each
part's SHA-256 in ``OUT/manifest.json`` and a rerun with the same OUT skips the parts whose file
and key still match. The driver then writes the maps through
:class:`~landslip.inference.predict.MapWriter` (Cloud-Optimized GeoTIFFs) and polygonises the
assembled mask, so polygons crossing strip borders are one polygon, as in the single-process
run.

The bundle is sent to each worker once: the driver reads its files (``model.json``,
``model.safetensors`` and ``model.onnx`` when present: :class:`BundleFiles`) and scatters them to
every worker (``client.scatter(..., broadcast=True)``); each strip task takes that one future, and
a worker writes the files once into its own temporary folder, keyed by their SHA-256
(:func:`worker_bundle_dir`), and loads its engine from there once per process (an engine cache
keyed by checksum, engine, device and threads). So the bundle need not be readable on the
workers; the images must be, at the same paths.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip import __version__
from landslip.dataset.checksums import sha256_file
from landslip.errors import InputError, LandslipError
from landslip.formats import read_document
from landslip.inference.predict import (
    GDAL_CACHE_MB,
    MapWriter,
    PredictOptions,
    ScenePass,
    engine_fields,
    finish_prediction,
    predict_scene,
    scene_inputs,
    scene_outputs,
)
from landslip.inference.sliding import RowBand, SlidingPlan, make_plan
from landslip.inference.stream import InputSpec, StreamStats, stream_predict
from landslip.io.atomic import atomic_path, write_json_atomic
from landslip.io.checks import declare_nodata
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterInfo, open_raster, raster_info
from landslip.models.engine import Engine, create_engine, default_threads
from landslip.spectral.extras import ExtraInputs, ExtraSpec, parse_extra

__all__ = [
    "BundleFiles",
    "ClusterOptions",
    "SceneSummary",
    "StripTask",
    "expand_images",
    "predict_many",
    "predict_strip",
    "scene_names",
    "strip_tasks",
    "worker_bundle_dir",
]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
Float = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how the work runs.

    Attributes:
        workers: Start a local cluster of this many worker processes (one task at a time
            each); None: no local cluster.
        scheduler: Address of an existing dask.distributed scheduler (``tcp://host:8786``).
        strip_rows: Window rows per strip (a scene of more window rows is split).
        retries: Retries of a failed task (dask ``retries=``).
    """

    workers: int | None = None
    scheduler: str | None = None
    strip_rows: int = 4
    retries: int = 2

    @property
    def distributed(self) -> bool:
        """Whether the work goes to a dask.distributed cluster."""
        return self.workers is not None or self.scheduler is not None

    def check(self) -> None:
        """Refuse bad values (before anything is written).

        Raises:
            InputError: Naming the option.
        """
        if self.workers is not None and self.scheduler is not None:
            raise InputError("give --workers or --scheduler, not both")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.strip_rows < 1:
            raise InputError(f"--strip-rows must be at least 1, got {self.strip_rows}")
        if self.retries < 0:
            raise InputError(f"retries must be >= 0, got {self.retries}")


@dataclass
class SceneSummary:
    """One scene's line of ``summary.json``.

    Attributes:
        name: Output subfolder name.
        image: The image path.
        status: ``done`` or ``failed``.
        error: Why it failed (one line), or None.
        polygons: Landslide polygons written.
        landslide_pixels: Landslide pixels in the final mask.
        landslide_area_m2: ``landslide_pixels`` times the pixel area, square metres.
        valid_pixels: Pixels that are not nodata.
        parts: Strip parts of the scene (0 in-process).
        parts_skipped: Parts found finished by the manifest.
        seconds: Wall time of the scene's assembly or in-process prediction.
        task_seconds: Summed wall time of its strip tasks on the workers.
    """

    name: str
    image: str
    status: str = "failed"
    error: str | None = None
    polygons: int = 0
    landslide_pixels: int = 0
    landslide_area_m2: float = 0.0
    valid_pixels: int = 0
    parts: int = 0
    parts_skipped: int = 0
    seconds: float = 0.0
    task_seconds: float = 0.0


@dataclass(frozen=True)
class StripTask:
    """One cluster task: window rows of a scene's plan, the output rows they finish.

    Attributes:
        bundle: Path of the model bundle (read by the worker).
        image: Path of the image.
        spec: Band selection and normalisation (no ``extras``).
        plan: ``(height, width, window, overlap, multiple)`` of :func:`make_plan`.
        first_window_row: First window row run (includes the rows above needed to blend).
        end_window_row: Window row after the last one run.
        row_lo: First output row kept.
        row_hi: Output row after the last one kept.
        batch_size: Windows per forward pass.
        tta: Test-time augmentation.
        engine: Engine choice (``auto``, ``torch``, ``onnx``).
        device: Torch device or None.
        threads: Engine threads or None.
        part: Path of the ``.npy`` part written.
        bundle_sha256: Checksum of the bundle's files (:class:`BundleFiles`), so that a part
            predicted by other weights at the same bundle path is not reused; "" when unknown.
        extras: The ``--extra`` rasters as ``(specs, terrain bands, image bands)`` of
            :class:`~landslip.spectral.extras.ExtraInputs` (the worker opens them on the
            image grid), or None.
    """

    bundle: str
    image: str
    spec: InputSpec
    plan: tuple[int, int, int, int, int]
    first_window_row: int
    end_window_row: int
    row_lo: int
    row_hi: int
    batch_size: int
    tta: bool
    engine: str
    device: str | None
    threads: int | None
    part: str
    bundle_sha256: str = ""
    extras: tuple[tuple[ExtraSpec, ...], tuple[str, ...], tuple[str, ...]] | None = None

    def key(self) -> str:
        """What the part depends on, as text (a manifest entry is reused only when equal)."""
        fields = asdict(self)
        fields.pop("spec")
        fields["spec"] = repr(self.spec)
        return json.dumps(fields, sort_keys=True, default=str)


BUNDLE_FILES = ("model.json", "model.safetensors", "model.onnx")
"""The files of a bundle folder sent to the workers (``model.onnx`` only when present)."""


@dataclass(frozen=True)
class BundleFiles:
    """A model bundle's files, as bytes, to send to the workers once (one scattered object).

    Attributes:
        sha256: SHA-256 over the files' names and bytes (the workers' cache key).
        files: ``(name, bytes)`` per file, in :data:`BUNDLE_FILES` order.
    """

    sha256: str
    files: tuple[tuple[str, bytes], ...]

    @classmethod
    def read(cls, folder: str | Path) -> BundleFiles:
        """Read the bundle files of ``folder`` (a bundle folder)."""
        files = tuple((name, (Path(folder) / name).read_bytes()) for name in BUNDLE_FILES
                      if (Path(folder) / name).is_file())
        digest = hashlib.sha256()
        for name, data in files:
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
        return cls(digest.hexdigest(), files)


def _cache_root() -> Path:
    """This worker's folder for bundle copies: its dask local directory, else the temp dir."""
    try:
        from distributed import get_worker

        return Path(get_worker().local_directory) / "landslip-bundles"
    except (ImportError, ValueError):
        return Path(tempfile.gettempdir()) / "landslip-bundles"


def worker_bundle_dir(files: BundleFiles, root: Path | None = None) -> Path:
    """The folder of this worker's copy of a bundle, written once (atomically) per checksum.

    Args:
        files: The bundle's files.
        root: Cache folder; None: the worker's local directory (see :func:`_cache_root`).

    Returns:
        ``root/<sha256>/``, holding the bundle files.
    """
    folder = (root or _cache_root()) / files.sha256
    if (folder / "model.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{files.sha256[:12]}-", dir=folder.parent))
    for name, data in files.files:
        (tmp / name).write_bytes(data)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process of this machine wrote it first
        for child in tmp.iterdir():
            child.unlink()
        tmp.rmdir()
    return folder


_ENGINES: dict[tuple[str, str, str | None, int | None], Engine] = {}


def _worker_engine(bundle: str, engine: str, device: str | None, threads: int | None) -> Engine:
    """The engine of this worker process, made once per bundle (path or checksum) and options."""
    key = (bundle, engine, device, threads)
    if key not in _ENGINES:
        from landslip.devices import resolve_device
        from landslip.models.bundle import load_bundle

        loaded = load_bundle(bundle, device=str(resolve_device(device)), weights="lazy")
        _ENGINES[key] = create_engine(loaded, engine, device, threads)
    return _ENGINES[key]


def _save_part(path: Path, rows: Float) -> str:
    """Write ``rows`` as ``.npy`` atomically; return the file's SHA-256."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, rows)
    return sha256_file(path)


def predict_strip(task: StripTask, files: BundleFiles | None = None) -> dict[str, Any]:
    """Run one strip on this worker and write its part (the cluster task).

    Args:
        task: The strip.
        files: The bundle's files (sent once per worker); None: load ``task.bundle``.

    Returns:
        ``part``, ``sha256``, ``seconds``, ``model_seconds``, ``skipped`` (all-nodata windows
        of the strip's own window rows are counted once per run), the engine's fields and
        ``bundle_dir`` (the bundle folder the worker loaded).
    """
    start = time.perf_counter()
    bundle = task.bundle if files is None else str(worker_bundle_dir(files))
    engine = _worker_engine(bundle, task.engine, task.device, task.threads)
    plan = make_plan(*task.plan[:4], multiple=task.plan[4])
    rows = np.full((task.row_hi - task.row_lo, plan.width), np.nan, dtype=np.float32)

    def keep(band: RowBand) -> None:
        a = max(band.window.row_off, task.row_lo)
        b = min(band.window.row_end, task.row_hi)
        if a < b:
            src = slice(a - band.window.row_off, b - band.window.row_off)
            rows[a - task.row_lo:b - task.row_lo] = np.where(
                band.valid[src], band.prob[src], np.float32(np.nan))

    with gdal_env(GDAL_CACHE_MB), open_raster(task.image) as ds, \
            _open_extras(task.extras, task.image) as extras:
        spec = task.spec if extras is None else replace(task.spec, extras=extras)
        stats = stream_predict(ds, engine, spec, plan, keep, batch_size=task.batch_size,
                               tta=task.tta, max_window_rows=task.end_window_row,
                               first_window_row=task.first_window_row)
    digest = _save_part(Path(task.part), rows)
    return {"part": task.part, "sha256": digest, "seconds": time.perf_counter() - start,
            "model_seconds": stats.model_seconds, "skipped": stats.skipped,
            "engine": engine_fields(engine), "bundle_dir": bundle}


def _open_extras(args: tuple[tuple[ExtraSpec, ...], tuple[str, ...], tuple[str, ...]] | None,
                 image: str) -> Any:
    """The task's extra inputs on the image's grid (a context to open), or ``nullcontext()``."""
    if args is None:
        return nullcontext()
    specs, terrain, image_bands = args
    return ExtraInputs(list(specs), raster_info(image).grid, terrain, image_bands)


def _extras_args(extras: ExtraInputs | None
                 ) -> tuple[tuple[ExtraSpec, ...], tuple[str, ...], tuple[str, ...]] | None:
    """What a worker needs to rebuild ``extras`` (which holds open readers, so is not sent)."""
    if extras is None:
        return None
    return tuple(src.spec for src in extras.sources), extras.terrain, extras.image_bands


def strip_tasks(plan: SlidingPlan, strip_rows: int, base: StripTask) -> list[StripTask]:
    """Split a plan into strips of ``strip_rows`` window rows (``base`` gives the rest).

    Strip ``s`` owns the output rows from its first window row's start to the next strip's
    first window row's start; it also runs every earlier window row reaching into them.
    """
    n = len(plan.row_starts)
    tasks = []
    for k, a in enumerate(range(0, n, strip_rows)):
        b = min(a + strip_rows, n)
        row_lo = plan.row_starts[a] if a > 0 else 0
        row_hi = plan.row_starts[b] if b < n else plan.height
        first = next(i for i in range(n) if plan.row_starts[i] + plan.win_h > row_lo)
        part = str(Path(base.part) / f"strip-{k:04d}.npy")
        tasks.append(replace(base, first_window_row=min(first, a), end_window_row=b,
                             row_lo=row_lo, row_hi=row_hi, part=part))
    return tasks


def expand_images(items: Sequence[str | Path]) -> list[Path]:
    """The images named by paths, glob patterns and ``.txt`` lists (one path a line).

    A VRT mosaic is one image. Relative paths in a list are relative to the list's folder.

    Raises:
        InputError: When a pattern matches nothing or no image is named.
    """
    out: list[Path] = []
    for item in items:
        text = str(item)
        if text.endswith(".txt") and Path(text).is_file():
            folder = Path(text).parent
            for line in Path(text).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    p = Path(line.strip())
                    out.append(p if p.is_absolute() else folder / p)
        elif any(c in text for c in "*?["):
            found = sorted(glob.glob(text))
            if not found:
                raise InputError(f"no image matches {text!r}; check the pattern")
            out.extend(Path(f) for f in found)
        else:
            out.append(Path(text))
    if not out:
        raise InputError("no image given; name image files, a glob or a .txt list")
    return out


def scene_names(images: Sequence[Path]) -> list[str]:
    """One output folder name per image: its stem, with ``-2``, ``-3`` ... for repeats."""
    names: list[str] = []
    for img in images:
        name, k = img.stem, 2
        while name in names:
            name, k = f"{img.stem}-{k}", k + 1
        names.append(name)
    return names


@dataclass
class _Scene:
    """A scene being mapped on the cluster."""

    summary: SceneSummary
    info: RasterInfo
    spec: InputSpec
    plan: SlidingPlan
    opts: PredictOptions
    tasks: list[StripTask]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    start: float = 0.0
    extras: ExtraInputs | None = None


def _plan_scene(bundle: Any, engine: Engine, summary: SceneSummary, out: Path,
                opts: PredictOptions, kw: dict[str, Any]) -> _Scene:
    """Check one image and split it into strip tasks (raises for an unreadable image)."""
    info = declare_nodata(raster_info(summary.image), kw.get("nodata"))
    inputs, spec = scene_inputs(bundle, info, kw.get("band_names"), kw.get("extras", ()),
                                opts.min_slope is not None, bool(kw.get("strict", False)))
    if (opts.geojson or opts.html) and info.grid.crs is None:
        raise InputError(f"{summary.image} has no CRS, so --geojson/--html cannot be written; "
                         "assign a CRS first or drop them")
    window = opts.window if opts.window is not None else engine.default_window
    plan = make_plan(info.grid.height, info.grid.width, window, opts.overlap,
                     engine.required_multiple)
    batch = opts.batch_size or (4 if engine.device.type == "cuda" else 1)
    base = StripTask(
        bundle=str(bundle.path), image=str(summary.image), spec=spec,
        plan=(plan.height, plan.width, window, opts.overlap, engine.required_multiple),
        first_window_row=0, end_window_row=0, row_lo=0, row_hi=0, batch_size=batch,
        tta=opts.tta, engine=opts.engine, device=opts.device, threads=opts.threads,
        part=str(out / "parts" / summary.name), bundle_sha256=str(kw.get("bundle_sha256", "")),
        extras=_extras_args(inputs.extras))
    tasks = strip_tasks(plan, int(kw.get("strip_rows", 4)), base)
    summary.parts = len(tasks)
    return _Scene(summary, info, spec, plan, opts, tasks, start=time.perf_counter(),
                  extras=inputs.extras)


def _load_manifest(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        doc = read_document(path, expected="landslip-parts", supported=1)
        return {str(k): dict(v) for k, v in doc.get("parts", {}).items()}
    except (InputError, AttributeError, TypeError, ValueError) as exc:
        log.warning("%s is unreadable (%s); every part is predicted again", path, exc)
        return {}


def _done(entry: dict[str, Any] | None, task: StripTask) -> bool:
    """Whether the manifest entry says ``task``'s part is finished and intact."""
    part = Path(task.part)
    return (entry is not None and entry.get("key") == task.key() and part.is_file()
            and entry.get("sha256") == sha256_file(part))


def _assembled_bands(scene: _Scene, block: int = 256) -> Iterator[RowBand]:
    """The scene's rows from its parts, in full-width bands of at most ``block`` rows."""
    parts = [(t.row_lo, np.load(t.part, mmap_mode="r")) for t in scene.tasks]
    width = scene.plan.width
    for r0 in range(0, scene.plan.height, block):
        r1 = min(r0 + block, scene.plan.height)
        rows = np.empty((r1 - r0, width), dtype=np.float32)
        for lo, arr in parts:
            a, b = max(r0, lo), min(r1, lo + arr.shape[0])
            if a < b:
                rows[a - r0:b - r0] = arr[a - lo:b - lo]
        valid = ~np.isnan(rows)
        yield RowBand(_row_window(r0, r1, width), np.where(valid, rows, np.float32(0)), valid)


def _row_window(r0: int, r1: int, width: int) -> Any:
    from landslip.grid import Window

    return Window(r0, 0, r1 - r0, width)


def _assemble(scene: _Scene, out_dir: Path, report_extra: dict[str, Any]) -> None:
    """Write the maps, polygons and report of a scene whose parts are all finished."""
    opts, s = scene.opts, scene.summary
    out = scene_outputs(out_dir, opts.geojson)
    with gdal_env(GDAL_CACHE_MB), MapWriter(out.probability, out.mask, scene.info.grid,
                                             opts.threshold, opts.probability_dtype) as writer:
        for band in _assembled_bands(scene):
            writer.write(band)
    results = list(scene.results.values())
    stats = StreamStats(windows=scene.plan.n_windows,
                        model_seconds=sum(r["model_seconds"] for r in results),
                        total_seconds=sum(r["seconds"] for r in results))
    eng = next((r["engine"] for r in results if "engine" in r),
               {"device": "", "engine": "", "threads": None, "engine_description": "",
                "max_window": 0})
    spec = scene.spec if scene.extras is None else replace(scene.spec, extras=scene.extras)
    run = ScenePass(info=scene.info, spec=spec, opts=opts, plan=scene.plan, stats=stats,
                    batch_size=scene.tasks[0].batch_size, engine=eng, start=scene.start)
    extra = dict(report_extra, parts=len(scene.tasks), parts_skipped=s.parts_skipped)
    if scene.extras is not None:
        extra.update(extras=scene.extras.describe(), min_slope=opts.min_slope)
    with scene.extras or nullcontext():  # mean_slope and --min-slope read the terrain
        r = finish_prediction(out, run, writer, extra)
    _fill_summary(s, r.n_polygons, r.landslide_pixels, r.valid_pixels, scene.info)
    s.task_seconds = round(stats.total_seconds, 3)


def _fill_summary(s: SceneSummary, polygons: int, landslide: int, valid: int,
                  info: RasterInfo) -> None:
    rx, ry = info.grid.res
    s.status, s.polygons, s.landslide_pixels, s.valid_pixels = "done", polygons, landslide, valid
    s.landslide_area_m2 = round(landslide * abs(rx * ry), 3)


@contextmanager
def _client(cluster: ClusterOptions) -> Iterator[Any]:
    """A dask.distributed client: of a local cluster started here, or of a scheduler."""
    from distributed import Client, LocalCluster

    if cluster.scheduler is not None:
        with Client(cluster.scheduler) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    local = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=cluster.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with local, Client(local) as client:  # type: ignore[no-untyped-call]
        yield client


def _run_cluster(client: Any, scenes: list[_Scene], out: Path, retries: int,
                 files: BundleFiles) -> None:
    """Send the bundle to the workers, submit the unfinished parts, record each finished one."""
    from distributed import as_completed

    manifest_path = out / MANIFEST
    manifest = _load_manifest(manifest_path)
    futures: dict[Any, tuple[_Scene, StripTask]] = {}
    sent: Any = None
    for scene in scenes:
        for task in scene.tasks:
            entry = manifest.get(task.part)
            if _done(entry, task):
                scene.summary.parts_skipped += 1
                scene.results[task.part] = dict(entry or {}, seconds=0.0, model_seconds=0.0)
                continue
            if sent is None:  # once per run, and only when a part is left to predict
                sent = client.scatter(files, broadcast=True, hash=False)
            fut = client.submit(predict_strip, task, sent, retries=retries, pure=False)
            futures[fut] = (scene, task)
    for fut in as_completed(list(futures)):  # type: ignore[no-untyped-call]
        scene, task = futures[fut]
        try:
            res = fut.result()
        except Exception as err:  # a task failed after its retries: the scene fails
            scene.summary.error = f"{task.part}: {type(err).__name__}: {err}".splitlines()[0]
            continue
        scene.results[task.part] = res
        manifest[task.part] = {"key": task.key(), "sha256": res["sha256"],
                               "engine": res["engine"]}
        write_json_atomic(manifest_path, {"format": "landslip-parts", "version": 1,
                                          "parts": manifest})


def predict_many(
    bundle_path: str | Path,
    images: Sequence[str | Path],
    out_dir: str | Path,
    options: PredictOptions,
    cluster: ClusterOptions | None = None,
    *,
    threshold: float | None = None,
    band_names: Sequence[str] | None = None,
    nodata: float | None = None,
    strict: bool = False,
    extras: Sequence[ExtraSpec | str] = (),
    client: Any = None,
) -> list[SceneSummary]:
    """Map several images (in-process, or on a dask.distributed cluster) into ``out_dir``.

    Args:
        bundle_path: Run folder, bundle folder or ``model.json``.
        images: Paths, glob patterns and ``.txt`` lists (:func:`expand_images`).
        out_dir: Output folder: ``<image stem>/`` per scene, ``summary.json``, and with a
            cluster ``manifest.json`` and ``parts/``.
        options: The prediction options; ``options.threshold`` is replaced by ``threshold``
            (``max_window_rows`` is not supported here; ``options.min_slope`` needs a DEM in
            ``extras``). With ``workers`` and no ``threads``, each worker's engine gets
            ``cores // workers`` threads.
        cluster: Where to run; None or neither workers nor scheduler: in-process.
        threshold: Probability threshold; None: the bundle's.
        band_names, nodata, strict: As in :func:`~landslip.inference.predict.predict_scene`.
        extras: The ``--extra`` rasters, the same for every image (e.g. one DEM and one
            pre-event mosaic covering them all), each warped window by window onto each
            image's grid as in :func:`~landslip.inference.predict.predict_scene`.
        client: A ready :class:`distributed.Client` to use (``cluster`` then only needs
            ``workers`` or ``scheduler`` set to choose the cluster path); None: landslip
            starts a local cluster (``workers``) or connects to ``scheduler``, and stops it.

    Returns:
        One :class:`SceneSummary` per image, in order (failed scenes included).

    Raises:
        InputError: For bad options (nothing is written).
    """
    cl = cluster or ClusterOptions()
    cl.check()
    options.check()
    if cl.workers is not None and options.threads is None:
        options = replace(options, threads=max(1, default_threads() // cl.workers))
    specs = [parse_extra(e) if isinstance(e, str) else e for e in extras]
    for e in specs:
        raster_info(e.path)  # a missing or unreadable extra raster stops the run here
    paths = expand_images(images)
    out = Path(out_dir)
    summaries = [SceneSummary(name=n, image=str(p)) for n, p in zip(scene_names(paths), paths,
                                                                      strict=True)]
    start = time.perf_counter()
    if cl.distributed:
        _predict_on_cluster(bundle_path, summaries, out, options, cl,
                            {"band_names": band_names, "nodata": nodata, "strict": strict,
                             "strip_rows": cl.strip_rows, "threshold": threshold,
                             "client": client, "extras": specs})
    else:
        kw = {"band_names": band_names, "nodata": nodata, "strict": strict,
              "threshold": threshold, "extras": specs, "min_slope": options.min_slope}
        for s in summaries:
            _predict_in_process(bundle_path, s, out, options, kw)
    write_summary(out, summaries, time.perf_counter() - start, cl)
    return summaries


def _predict_in_process(bundle_path: str | Path, s: SceneSummary, out: Path,
                        opts: PredictOptions, kw: dict[str, Any]) -> None:
    """One scene with :func:`predict_scene`; a failure is recorded in ``s``."""
    t0 = time.perf_counter()
    try:
        r = predict_scene(
            bundle_path, s.image, out / s.name, window=opts.window, overlap=opts.overlap,
            batch_size=opts.batch_size, tta=opts.tta, min_area=opts.min_area,
            geojson=opts.geojson, probability_dtype=opts.probability_dtype,
            device=opts.device, engine=opts.engine, threads=opts.threads, html=opts.html,
            **kw)
        _fill_summary(s, r.n_polygons, r.landslide_pixels, r.valid_pixels, raster_info(s.image))
    except Exception as err:  # one bad scene must not stop the others
        s.error = _one_line(err)
        log.error("%s failed: %s", s.image, s.error)
    s.seconds = round(time.perf_counter() - t0, 3)


def _one_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return text if isinstance(err, LandslipError) else f"{type(err).__name__}: {text}"


def _predict_on_cluster(bundle_path: str | Path, summaries: list[SceneSummary], out: Path,
                        opts: PredictOptions, cl: ClusterOptions, kw: dict[str, Any]) -> None:
    from landslip.devices import resolve_device
    from landslip.models.bundle import load_bundle

    bundle = load_bundle(bundle_path, device=str(resolve_device(opts.device)), weights="lazy")
    files = BundleFiles.read(bundle.path)
    kw = dict(kw, bundle_sha256=files.sha256)
    threshold = kw.get("threshold")
    opts = replace(opts, threshold=bundle.threshold if threshold is None else float(threshold))
    scenes: list[_Scene] = []
    with create_engine(bundle, opts.engine, opts.device, opts.threads) as engine:
        for s in summaries:
            try:
                scenes.append(_plan_scene(bundle, engine, s, out, opts, kw))
            except Exception as err:  # an unreadable scene is reported, the others go on
                s.error = _one_line(err)
                log.error("%s cannot be predicted: %s", s.image, s.error)
    given = kw.get("client")
    with nullcontext(given) if given is not None else _client(cl) as client:
        _run_cluster(client, scenes, out, cl.retries, files)
    for scene in scenes:
        if scene.summary.error is not None:
            continue
        try:
            _assemble(scene, out / scene.summary.name, {"bundle": str(bundle.path)})
        except Exception as err:  # reported in summary.json; the other scenes go on
            scene.summary.error = _one_line(err)
            log.error("%s: assembly failed: %s", scene.summary.image, scene.summary.error)
        scene.summary.seconds = round(time.perf_counter() - scene.start, 3)


def write_summary(out: Path, summaries: list[SceneSummary], seconds: float,
                  cluster: ClusterOptions) -> Path:
    """Write ``summary.json`` (format ``landslip-summary`` 1) and return its path."""
    done = [s for s in summaries if s.status == "done"]
    return write_json_atomic(out / SUMMARY, {
        "format": "landslip-summary", "version": 1, "landslip_version": __version__,
        "scenes": len(summaries), "done": len(done), "failed": len(summaries) - len(done),
        "workers": cluster.workers, "scheduler": cluster.scheduler,
        "seconds": round(seconds, 3),
        "polygons": sum(s.polygons for s in done),
        "landslide_area_m2": round(sum(s.landslide_area_m2 for s in done), 3),
        "per_scene": [asdict(s) for s in summaries],
    })
