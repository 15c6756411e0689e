"""Streaming whole-scene prediction: read windows, batch, predict, blend, hand out row bands.

The unit of work is one window (:func:`predict_window`): read the raw bands (padded past the
scene edge), compute the band set, normalise, run the model, return probabilities and the valid
mask. It needs only the open image, the window and the :class:`InputSpec`, so the same function
can be mapped over a cluster engine (for example ``dask.delayed``) without a redesign.

:func:`stream_predict` runs the windows of a :class:`~landslip.inference.sliding.SlidingPlan`
row by row in batches through an :class:`~landslip.models.engine.Engine` (PyTorch or ONNX
Runtime; reading the next batch in a background thread while the engine runs),
blends them in a :class:`~landslip.inference.sliding.RowBandAccumulator` and passes each
finished row band to a ``sink`` (the GeoTIFF writers). Peak memory is the row buffer
(``5 * width * (window + 256)`` bytes) plus one batch of model activations; it does not depend
on the scene height.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import ModelError
from landslip.grid import Window
from landslip.inference.sliding import RowBand, RowBandAccumulator, SlidingPlan
from landslip.io.raster import read_valid, read_window
from landslip.models.engine import Engine
from landslip.progress import track
from landslip.spectral.bands import BandSet, normalize

__all__ = [
    "BackgroundSink",
    "InputSpec",
    "StreamStats",
    "predict_window",
    "prepare_window",
    "stream_predict",
]

log = logging.getLogger(__name__)

Float = npt.NDArray[np.float32]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class InputSpec:
    """How to turn image pixels into model input.

    Attributes:
        band_set: The model's band set (from the bundle).
        band_indexes: 1-based image band index of each of ``band_set.required``, in order.
        mean: Per model-input band mean (from the bundle), same units as the image.
        std: Per model-input band standard deviation.
        nodata: The image's nodata value, or None.
        extras: Open :class:`~landslip.spectral.extras.ExtraInputs` giving the bands not read
            from the image (``--extra``), or None.
        masked: Also honour GDAL's masks (an alpha band or internal mask; the image has no
            nodata value).
    """

    band_set: BandSet
    band_indexes: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    nodata: float | None
    extras: Any = None
    masked: bool = False


@dataclass
class StreamStats:
    """What a streaming run did.

    Attributes:
        windows: Windows in the plan.
        skipped: Windows skipped because all their pixels are nodata.
        batches: Model batches run.
        model_seconds: Wall time inside the engine's forward passes (including host/device
            copies).
        total_seconds: Wall time of the whole stream.
        buffer_bytes: Bytes held by the row-band buffer.
    """

    windows: int = 0
    skipped: int = 0
    batches: int = 0
    model_seconds: float = 0.0
    total_seconds: float = 0.0
    buffer_bytes: int = 0


def prepare_window(ds: Any, window: Window, spec: InputSpec) -> tuple[Float, Bool]:
    """Read one window and turn it into normalised model input.

    Args:
        ds: Open rasterio dataset of the image.
        window: Window on the image grid; parts outside the image are padded and invalid.
        spec: Band selection and normalisation.

    Returns:
        (x: float32 (C, h, w) normalised, 0 at invalid pixels; valid: bool (h, w), False at
        nodata and outside the image).
    """
    fill = spec.nodata if spec.nodata is not None else 0
    raw = (read_window(ds, window, spec.band_indexes, fill=fill) if spec.band_indexes
           else np.zeros((0, window.height, window.width), np.float32))  # all from --extra
    names, nodata = spec.band_set.required, spec.nodata
    if spec.extras is not None:
        raw, names, nodata = spec.extras.stack(raw, spec.nodata, window)
    bands, valid = spec.band_set.compute(raw, names, nodata)
    if spec.masked:
        valid &= read_valid(ds, window, spec.band_indexes)
    inside = window.intersection(Window(0, 0, ds.height, ds.width))
    if inside is None or inside.height != window.height or inside.width != window.width:
        mask = np.zeros(valid.shape, dtype=bool)
        if inside is not None:
            mask[inside.relative_to(window).slices()] = True
        valid &= mask
    return normalize(bands, spec.mean, spec.std, valid), valid


def predict_window(
    ds: Any, window: Window, spec: InputSpec, engine: Engine, tta: bool = False,
) -> tuple[Float, Bool]:
    """Predict one window on its own (the unit a cluster engine would map over).

    Args:
        ds: Open rasterio dataset of the image.
        window: Window on the image grid (height and width multiples of the engine's
            ``required_multiple``).
        spec: Band selection and normalisation.
        engine: The prediction engine (:mod:`landslip.models.engine`).
        tta: Average over the 8 flips/90-degree rotations.

    Returns:
        (prob: float32 (h, w), 0 where not valid; valid: bool (h, w)).
    """
    x, valid = prepare_window(ds, window, spec)
    if not valid.any():
        return np.zeros(valid.shape, dtype=np.float32), valid
    prob = engine.probabilities(x[None], tta)[0]
    prob[~valid] = 0
    return prob, valid


BACKGROUND_NICE = 10
"""Niceness of the reading and writing threads (Linux): the engine's threads come first."""


def yield_to_the_model() -> None:
    """Lower the calling thread's scheduling priority (a thread pool initializer).

    The reading and writing threads then use the cores when the engine's threads leave them
    (between forward passes, at its synchronisation points) instead of delaying one of its
    threads, which stalls the others at the next barrier. Linux only (``setpriority`` on the
    thread id); elsewhere, or when not permitted, a no-op.
    """
    with suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < BACKGROUND_NICE:  # only ever lower it
            os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)


def _batches(plan: SlidingPlan, batch_size: int) -> Iterator[tuple[int, bool, list[Window]]]:
    """(window row index, last batch of that row?, windows) in processing order."""
    for i, row in enumerate(plan.window_rows()):
        for k in range(0, len(row), batch_size):
            yield i, k + batch_size >= len(row), row[k:k + batch_size]


def _prefetched(
    batches: Sequence[tuple[int, bool, list[Window]]],
    load: Callable[[Sequence[Window]], list[tuple[Float, Bool]]],
    prefetch: bool,
) -> Generator[tuple[bool, list[Window], list[tuple[Float, Bool]]], None, None]:
    """(row finished?, windows, prepared windows) per batch, reading one batch ahead.

    With ``prefetch`` the next batch is read and normalised in a background thread while the
    caller runs the model on the current one.
    """
    if not prefetch or not batches:
        for _, row_done, windows in batches:
            yield row_done, windows, load(windows)
        return
    with ThreadPoolExecutor(max_workers=1, initializer=yield_to_the_model) as pool:
        pending: Future[list[tuple[Float, Bool]]] = pool.submit(load, batches[0][2])
        for b, (_, row_done, windows) in enumerate(batches):
            prepared = pending.result()
            if b + 1 < len(batches):
                pending = pool.submit(load, batches[b + 1][2])
            yield row_done, windows, prepared


def _predict_batch(
    prepared: list[tuple[Float, Bool]], engine: Engine, tta: bool, stats: StreamStats,
) -> list[Float]:
    """Probabilities of each prepared window; all-nodata windows are skipped (zeros)."""
    todo = [k for k, (_, v) in enumerate(prepared) if v.any()]
    stats.skipped += len(prepared) - len(todo)
    probs: list[Float] = [np.zeros(v.shape, dtype=np.float32) for _, v in prepared]
    if todo:
        t0 = time.perf_counter()
        out = engine.probabilities(np.stack([prepared[k][0] for k in todo]), tta)
        stats.model_seconds += time.perf_counter() - t0
        stats.batches += 1
        for n, k in enumerate(todo):
            probs[k] = out[n]
    return probs


def stream_predict(
    ds: Any,
    engine: Engine,
    spec: InputSpec,
    plan: SlidingPlan,
    sink: Callable[[RowBand], None],
    batch_size: int = 1,
    tta: bool = False,
    block: int = 256,
    max_window_rows: int | None = None,
    prefetch: bool = True,
    first_window_row: int = 0,
) -> StreamStats:
    """Predict a whole image window by window and hand out finished row bands.

    Args:
        ds: Open rasterio dataset of the image (its grid is the plan's scene).
        engine: The prediction engine (:mod:`landslip.models.engine`); the plan's windows
            must be multiples of its ``required_multiple``.
        spec: Band selection and normalisation.
        plan: The windows (from :func:`~landslip.inference.sliding.make_plan`).
        sink: Called with each finished :class:`RowBand`, top to bottom; the bands tile the
            scene rows exactly once.
        batch_size: Windows per forward pass (>= 1).
        tta: Test-time augmentation (8 flips/rotations averaged; 8x slower).
        block: Row bands start on multiples of this (the GeoTIFF tile height).
        max_window_rows: Stop before this window row index (for benchmarks measuring memory on
            a part of a huge scene; the sink then receives only the rows finished so far).
        prefetch: Read and normalise the next batch in a background thread.
        first_window_row: Start at this window row (a strip of the plan, as a cluster task
            runs it); rows above it are handed out zero and invalid. The windows, batches and
            the order of the float32 sums are those of the whole-scene run, so every row that
            only windows from this row on reach gets bit-identical values.

    Returns:
        The :class:`StreamStats` of the run.
    """
    if batch_size < 1:
        raise ModelError(f"--batch-size must be at least 1, got {batch_size}")
    start = time.perf_counter()
    acc = RowBandAccumulator(plan, block=block, first_window_row=first_window_row)
    stats = StreamStats(windows=plan.n_windows, buffer_bytes=acc.nbytes)
    n_rows = len(plan.row_starts) if max_window_rows is None else min(
        max_window_rows, len(plan.row_starts))
    batches = [b for b in _batches(plan, batch_size) if first_window_row <= b[0] < n_rows]

    def load(windows: Sequence[Window]) -> list[tuple[Float, Bool]]:
        return [prepare_window(ds, w, spec) for w in windows]

    last_row = batches[-1][0] if batches else -1
    with closing(_prefetched(batches, load, prefetch)) as stream:
        for row_done, windows, prepared in track(stream, total=len(batches),
                                                 description="predicting"):
            probs = _predict_batch(prepared, engine, tta, stats)
            for w, prob, (_, valid) in zip(windows, probs, prepared, strict=True):
                acc.add(w, prob, valid)
            if row_done:
                row = plan.row_starts.index(windows[0].row_off)
                for band in acc.finish_row(last=row == last_row):
                    sink(band)
    stats.total_seconds = time.perf_counter() - start
    log.debug("streamed %d windows (%d skipped) in %.1f s, %.1f s in the model",
              stats.windows, stats.skipped, stats.total_seconds, stats.model_seconds)
    return stats


class BackgroundSink:
    """Hand row bands to a sink in one background thread, in order, a few at a time.

    The writers' work (encoding, writing tiles, tracing polygons) then overlaps the model's
    forward passes instead of following each of them. At most ``pending`` bands wait (each at
    most one block of rows), so memory stays bounded. A context manager: leaving it waits for
    every band; an error of the sink is raised in the caller (at the next band or on leaving);
    when the caller fails, bands not yet started are dropped.

    Args:
        sink: Called with each :class:`RowBand`, in the order given.
        pending: Bands that may wait for the sink before the caller blocks.
    """

    def __init__(self, sink: Callable[[RowBand], None], pending: int = 2) -> None:
        self._sink = sink
        self._pending = max(1, pending)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="landslip-sink",
                                        initializer=yield_to_the_model)
        self._futures: deque[Future[None]] = deque()

    def __call__(self, band: RowBand) -> None:
        """Queue one band (blocks while ``pending`` bands wait; raises the sink's error)."""
        while self._futures and (self._futures[0].done()
                                 or len(self._futures) >= self._pending):
            self._futures.popleft().result()
        self._futures.append(self._pool.submit(self._sink, band))

    def __enter__(self) -> BackgroundSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                while self._futures:
                    self._futures.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

