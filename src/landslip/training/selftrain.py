"""Self-training for a new event: pseudo-labels from a teacher, students trained on them.

``landslip train DATASET -o RUN --unlabeled DATASET_OR_IMAGE [--rounds R]`` runs
:func:`self_train`:

* round 0 trains the teacher on the labelled dataset exactly as a plain run
  (:func:`landslip.training.fit.train`, run folder ``RUN/round-0``);
* each round k = 1..R predicts the unlabeled imagery with the current model, keeps its
  confident pixels (:func:`pseudo_labels`: ``p >= high`` landslide, ``p <= low`` background,
  other pixels :data:`~landslip.encoding.IGNORE`; a patch with too few confident pixels is
  dropped), writes the derived dataset ``RUN/round-k-data`` (the labelled train and val
  patches plus the pseudo-labelled patches as training patches, normalised with the labelled
  dataset's statistics) and trains a student on it from fresh weights (``RUN/round-k``),
  validated on the labelled validation split; the student is the next teacher;
* ``RUN/bundle`` is the last student's bundle; ``RUN/selftrain.json`` (format
  :data:`FORMAT`, read with :func:`read_rounds`) records each round's validation scores and
  pseudo-label counts; ``RUN/config.yaml`` is the whole configuration.

The unlabeled imagery is a dataset folder (all its patches, or one split with
``--unlabeled-split``; its labels are never read) or a GeoTIFF image, cut into patches of the
labelled dataset's size by :func:`landslip.dataset.prepare.prepare_dataset` without labels
(``RUN/unlabeled``: the same band naming and nodata rules as ``landslip prepare``). Bands are
matched by name, so the band order of the imagery does not matter.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.dataset.folder import DatasetFolder, open_dataset
from landslip.dataset.stats import DERIVED_STATS, nodata_free
from landslip.encoding import BACKGROUND, IGNORE, LANDSLIDE, apply_threshold
from landslip.errors import ConfigError, DatasetError, InputError
from landslip.evaluation.evaluate import predict_images
from landslip.formats import read_document
from landslip.io.atomic import write_json_atomic
from landslip.models.bundle import Bundle
from landslip.models.engine import Engine
from landslip.spectral.bands import BandSet, resolve_band_set
from landslip.training.config import TrainConfig, save_config
from landslip.training.fit import TrainResult, train

__all__ = ["DOCUMENT", "FORMAT", "VERSION", "PseudoRule", "SelfTrainResult", "Unlabeled",
           "init_from", "open_unlabeled", "predict_unlabeled", "pseudo_labels", "read_rounds",
           "self_train", "write_round_dataset"]

logger = logging.getLogger(__name__)

FORMAT = "landslip-selftrain"
"""Value of ``format`` in ``RUN/selftrain.json``."""

VERSION = 1
"""Version of ``selftrain.json`` written by this landslip (and the newest it reads)."""

DOCUMENT = "selftrain.json"
"""File name of the rounds document in the run folder."""


@dataclass(frozen=True)
class PseudoRule:
    """Which teacher probabilities become pseudo-labels.

    Attributes:
        high: Landslide where ``p >= high`` (float64 comparison, :func:`apply_threshold`).
        low: Background where ``p <= low``; ``low < high``.
        min_confident: Keep a patch when its confident pixels are at least this share of its
            valid pixels (and it has a valid pixel).
        kind: ``fixed`` (``high`` and ``low`` as given) or ``balanced`` (``high`` and ``low``
            are set from the teacher's probabilities by :meth:`balanced`).
        portion: Balanced rule: the share of each predicted class kept.
    """

    high: float
    low: float
    min_confident: float
    kind: str = "fixed"
    portion: float = 1.0

    @classmethod
    def from_config(cls, config: TrainConfig) -> PseudoRule:
        """The rule of ``--pseudo-rule``, ``--pseudo-threshold``, ``--pseudo-low``,
        ``--pseudo-min-confident`` and ``--pseudo-portion`` (balanced: thresholds still open)."""
        low = 1.0 - config.pseudo_threshold if config.pseudo_low is None else config.pseudo_low
        return cls(float(config.pseudo_threshold), float(low), float(config.pseudo_min_confident),
                   config.pseudo_rule, float(config.pseudo_portion))

    def balanced(self, prob: npt.NDArray[np.floating[Any]], valid: npt.NDArray[np.bool_],
                 threshold: float) -> PseudoRule:
        """The class-balanced rule (CBST, Zou et al. 2018) for these probabilities.

        The teacher predicts landslide where ``p >= threshold`` (its own decision threshold).
        Of the valid pixels predicted landslide, the ``ceil(portion * n)`` with the highest
        ``p`` are kept as landslide (``high`` = the lowest kept ``p``); of those predicted
        background, the ``ceil(portion * n)`` with the lowest ``p`` as background (``low`` =
        the highest kept ``p``). Ties at a cut-off are kept. So the pseudo-labels keep the
        class shares the teacher predicts, however its confidence differs between classes.

        Args:
            prob: (N, P, P) probabilities of every unlabeled patch (float32 or float64).
            valid: (N, P, P) bool, the pixels that may be labelled.
            threshold: The teacher's decision threshold, in (0, 1).

        Returns:
            A fixed rule (``kind`` ``balanced``) with these ``high`` and ``low``, keeping every
            patch with a confident pixel (``min_confident`` 0). ``high`` is ``inf`` when no
            pixel is predicted landslide, ``low`` is ``-inf`` when none is predicted background.
        """
        p = np.asarray(prob, dtype=np.float64)[valid]
        slide = apply_threshold(p, threshold)
        pos, neg = p[slide], p[~slide]
        high, low = math.inf, -math.inf
        if pos.size:
            k = math.ceil(self.portion * pos.size)
            high = float(np.partition(pos, pos.size - k)[pos.size - k])
        if neg.size:
            k = math.ceil(self.portion * neg.size)
            low = float(np.partition(neg, k - 1)[k - 1])
        return PseudoRule(high, low, 0.0, "balanced", self.portion)


def pseudo_labels(
    prob: npt.NDArray[np.floating[Any]], valid: npt.NDArray[np.bool_], rule: PseudoRule
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """Pseudo-labels of a batch of patches and which patches to keep.

    Args:
        prob: (N, P, P) landslide probabilities in [0, 1] (float32 or float64).
        valid: (N, P, P) bool, False where the imagery is nodata (never labelled).
        rule: The thresholds (for the balanced rule, as set by :meth:`PseudoRule.balanced`).

    Returns:
        (labels (N, P, P) uint8: LANDSLIDE where valid and ``p >= high``, BACKGROUND where valid
        and ``p <= low``, IGNORE elsewhere; keep (N,) bool: a valid pixel, and confident pixels
        at least ``min_confident`` of the valid ones, and at least one).
    """
    slide = apply_threshold(prob, rule.high) & valid
    back = (np.asarray(prob, dtype=np.float64) <= rule.low) & valid & ~slide
    labels = np.full(prob.shape, IGNORE, dtype=np.uint8)
    labels[back] = BACKGROUND
    labels[slide] = LANDSLIDE
    n = prob.shape[0]
    n_valid = valid.reshape(n, -1).sum(axis=1)
    n_conf = (slide | back).reshape(n, -1).sum(axis=1)
    keep = (n_valid > 0) & (n_conf > 0) & (n_conf >= rule.min_confident * n_valid)
    return labels, keep


@dataclass(frozen=True)
class Unlabeled:
    """The unlabeled imagery: the patches of a dataset folder (whose labels are never read).

    Attributes:
        dataset: The dataset folder (``RUN/unlabeled`` for an image).
        indices: (M,) int64 array indices of the patches to pseudo-label, increasing.
        source: The ``--unlabeled`` path as given.
        split: The split used, or None for every patch.
    """

    dataset: DatasetFolder
    indices: npt.NDArray[np.int64]
    source: Path
    split: str | None

    @property
    def kind(self) -> str:
        """``dataset`` or ``image``."""
        return "dataset" if self.source.is_dir() else "image"


def open_unlabeled(config: TrainConfig, labelled: DatasetFolder, band_set: BandSet,
                   work: Path) -> Unlabeled:
    """Open (or, for an image, cut into ``work/unlabeled``) the unlabeled imagery and check it.

    Raises:
        InputError: When the path does not exist.
        ConfigError: ``--unlabeled-split`` with an image.
        DatasetError: Another patch size than the labelled dataset, or no patch.
        BandError: When the imagery lacks a band the band set needs.
    """
    from landslip.dataset.prepare import prepare_dataset

    path = Path(str(config.unlabeled))
    if not path.exists():
        raise InputError(f"--unlabeled {path} does not exist; give a dataset folder or a "
                         "GeoTIFF image of the new event")
    split = config.unlabeled_split
    if path.is_dir():
        ds = open_dataset(path)
        if ds.patch_size != labelled.patch_size:
            raise DatasetError(f"--unlabeled {path} has {ds.patch_size} px patches but "
                               f"{labelled.path} has {labelled.patch_size} px; prepare it with "
                               f"--patch-size {labelled.patch_size}")
        indices = (ds.split_indices(split) if split is not None
                   else np.arange(len(ds), dtype=np.int64))
    else:
        if split is not None:
            raise ConfigError(f"--unlabeled-split needs a dataset folder, but {path} is a file; "
                              "drop --unlabeled-split")
        ds = prepare_dataset(path, None, work / "unlabeled", patch_size=labelled.patch_size,
                             fractions=(1.0, 0.0, 0.0)).dataset
        indices = np.arange(len(ds), dtype=np.int64)
    band_set.check_available(list(ds.band_names))
    if indices.size == 0:
        raise DatasetError(f"--unlabeled {path} has no {split} patches; choose another split")
    return Unlabeled(ds, indices, path, split)


def _inside_scene(ds: DatasetFolder, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """(B, P, P) True on the pixels of patches ``ids`` inside their source scene.

    Prepared datasets record the scene size; the padding past its edge is not imagery.
    """
    p = ds.patch_size
    inside = np.ones((ids.size, p, p), dtype=bool)
    scene = ds.meta.get("scene")
    if not isinstance(scene, dict) or "height" not in scene or "width" not in scene:
        return inside
    h, w = int(scene["height"]), int(scene["width"])
    for k, j in enumerate(ids):
        row = ds.index[int(j)]
        inside[k, max(0, h - row.row_off):, :] = False
        inside[k, :, max(0, w - row.col_off):] = False
    return inside


def predict_unlabeled(
    bundle: Bundle, unl: Unlabeled, engine: Engine, batch_size: int = 16
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]]:
    """Predict the unlabeled patches batch by batch, reading images only (never labels).

    Yields:
        (patch indices (B,), probabilities (B, P, P) float32, valid (B, P, P) bool: no needed
        band is nodata and the pixel is inside the scene).
    """
    for ids, prob, valid in predict_images(bundle, unl.dataset, unl.indices, engine,
                                           batch_size, "pseudo-labelling"):
        yield ids, prob, valid & _inside_scene(unl.dataset, ids)


def _same_nodata(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


class _Storage:
    """How the derived dataset stores raw bands: the labelled dataset's dtype and nodata when
    the unlabeled imagery shares them, else float32 with NaN as nodata."""

    def __init__(self, labelled: DatasetFolder, other: DatasetFolder, names: Sequence[str]):
        self.keep = (labelled.images.dtype == other.images.dtype
                     and _same_nodata(labelled.nodata, other.nodata))
        self.dtype = labelled.images.dtype if self.keep else np.dtype(np.float32)
        self.nodata = labelled.nodata if self.keep else math.nan
        self.names = list(names)

    def convert(self, ds: DatasetFolder, img: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """(C_ds, P, P) raw bands of ``ds`` -> (C, P, P) in the derived band order and dtype."""
        sel = img[[ds.band_names.index(b) for b in self.names]]
        if self.keep:
            return sel
        out = sel.astype(np.float32)
        if ds.nodata is not None:
            out[:, ~nodata_free(img, ds.nodata)] = np.float32(np.nan)
        return out


def write_round_dataset(
    out: Path, labelled: DatasetFolder, unl: Unlabeled, band_set: BandSet,
    predictions: Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32],
                                npt.NDArray[np.bool_]]],
    rule: PseudoRule,
) -> tuple[DatasetFolder, dict[str, Any]]:
    """Write the labelled train and val patches plus the kept pseudo-labelled patches.

    The pseudo-labelled patches are training patches; statistics (raw and derived bands) are
    the labelled dataset's, so inputs are normalised as in round 0.

    Returns:
        (the derived dataset, pseudo-label counts: patches predicted and kept, pixels
        landslide/background/ignored of the kept patches, confident and landslide shares).
    """
    from landslip.dataset.writer import DatasetWriter

    names = [b for b in labelled.band_names if b in unl.dataset.band_names]
    store = _Storage(labelled, unl.dataset, names)
    own = {s: labelled.split_indices(s) for s in ("train", "val")}
    capacity = own["train"].size + own["val"].size + unl.indices.size
    counts = {"patches_predicted": int(unl.indices.size), "patches_kept": 0,
              "pixels_landslide": 0, "pixels_background": 0, "pixels_ignored": 0}
    splits: list[str | None] = []
    with DatasetWriter(out, capacity, names, store.dtype, labelled.patch_size,
                       store.nodata) as writer:
        for split, ids in own.items():
            for j in ids:
                row = labelled.index[int(j)]
                writer.add(store.convert(labelled, np.asarray(labelled.images[j])),
                           labelled.labels[j], row.row_off, row.col_off, source="labelled")
                splits.append(split)
        for ids, prob, valid in predictions:
            labels, keep = pseudo_labels(prob, valid, rule)
            for k in np.flatnonzero(keep):
                writer.add(store.convert(unl.dataset, np.asarray(unl.dataset.images[ids[k]])),
                           labels[k], unl.dataset.index[int(ids[k])].row_off,
                           unl.dataset.index[int(ids[k])].col_off, source="pseudo")
                splits.append("train")
                counts["patches_kept"] += 1
                for key, value in (("landslide", LANDSLIDE), ("background", BACKGROUND),
                                   ("ignored", IGNORE)):
                    counts[f"pixels_{key}"] += int((labels[k] == value).sum())
        stats = {b: labelled.stats[b] for b in names if b in labelled.stats}
        meta = {"split": {"method": "self-training", "labelled": str(labelled.path),
                          "unlabeled": str(unl.source), "unlabeled_split": unl.split},
                "stats": stats, "crs": labelled.crs, "res": labelled.res}
        derived = writer.finish(splits, meta)
    _copy_band_stats(labelled, derived, band_set)
    return derived, counts | _shares(counts)


def _shares(counts: dict[str, int]) -> dict[str, float]:
    pixels = counts["pixels_landslide"] + counts["pixels_background"] + counts["pixels_ignored"]
    confident = counts["pixels_landslide"] + counts["pixels_background"]
    return {"kept_share": counts["patches_kept"] / max(counts["patches_predicted"], 1),
            "confident_share": confident / pixels if pixels else 0.0,
            "landslide_share": counts["pixels_landslide"] / confident if confident else 0.0}


def _copy_band_stats(labelled: DatasetFolder, derived: DatasetFolder, band_set: BandSet) -> None:
    """Cache the labelled dataset's statistics of every band of the set in ``derived``."""
    means, stds = labelled.band_stats(band_set)
    keys = [e if e is not None else n for n, e in zip(band_set.names, band_set.expressions,
                                                      strict=True)]
    stats = {k: {"mean": m, "std": s} for k, m, s in zip(keys, means, stds, strict=True)}
    write_json_atomic(derived.path / DERIVED_STATS,
                      {"fingerprint": derived.fingerprint, "stats": stats})


@dataclass(frozen=True)
class SelfTrainResult:
    """What a self-training run produced.

    Attributes:
        run_dir: The run folder.
        bundle_dir: The final bundle (the last student's), ``RUN/bundle``.
        rounds: One record per round (as in ``selftrain.json``), round 0 the teacher.
        document: ``RUN/selftrain.json``.
        seconds: Wall time.
    """

    run_dir: Path
    bundle_dir: Path
    rounds: list[dict[str, Any]]
    document: Path
    seconds: float


def _check_self_training(config: TrainConfig) -> None:
    """Refuse what self-training does not support, before anything is written."""
    if config.unlabeled is None:
        raise ConfigError("self-training needs --unlabeled DATASET_OR_IMAGE")
    if config.resume:
        raise ConfigError("resuming a self-training run is not supported; drop --resume and "
                          "start it again in a new run folder")
    if config.devices > 1 or config.num_nodes > 1:
        raise ConfigError("self-training runs on one device; drop --devices and --num-nodes")
    rule = PseudoRule.from_config(config)
    if rule.kind == "fixed" and not rule.low < rule.high:
        raise ConfigError(f"--pseudo-low {rule.low} must be below --pseudo-threshold "
                          f"{rule.high}")
    run = Path(config.output)
    if run.exists() and any(run.iterdir()):
        raise ConfigError(f"{run} is not empty; choose a new run folder for self-training")


def _open_teacher(config: TrainConfig, labelled: DatasetFolder, band_set: BandSet) -> Bundle:
    """Load ``--teacher`` and check that its bands, patch size (and, when students start from
    it, architecture) are the run's.

    Raises:
        ModelError: When it is not a readable bundle.
        ConfigError: When its bands, patch size or architecture differ.
    """
    from landslip.models.bundle import load_bundle
    from landslip.models.encoder_weights import encoder_params
    from landslip.models.registry import create_model

    teacher = load_bundle(Path(str(config.teacher)))
    name = f"--teacher {config.teacher}"
    if list(teacher.meta.band_names) != list(band_set.names):
        raise ConfigError(f"{name} reads bands {','.join(teacher.meta.band_names)} but the run "
                          f"uses {','.join(band_set.names)}; give --bands {teacher.meta.band_set}")
    if teacher.meta.patch_size not in (None, labelled.patch_size):
        raise ConfigError(f"{name} was trained on {teacher.meta.patch_size} px patches but "
                          f"{labelled.path} has {labelled.patch_size} px; use a teacher of the "
                          "dataset's patch size")
    if config.student_init == "teacher":
        model, params = config.model_name_and_params()
        params = encoder_params(model, params, config.encoder, None)
        try:
            create_model(model, len(band_set), **params).load_state_dict(
                teacher.model.state_dict(), strict=True)
        except (RuntimeError, TypeError, ValueError):
            raise ConfigError(f"{name} is a {teacher.meta.model} {teacher.meta.model_params} "
                              f"but students are {model} {params}; give the teacher's --model "
                              "and options, or --student-init fresh") from None
    return teacher


def _record(k: int, result: TrainResult, pseudo: dict[str, Any] | None) -> dict[str, Any]:
    return {"round": k, "role": "teacher" if k == 0 else "student", "run": result.run_dir.name,
            "val": result.best_val, "best_epoch": result.best_epoch,
            "epochs": result.epochs_completed, "seconds": round(result.seconds, 3),
            **({"pseudo": pseudo} if pseudo is not None else {})}


def _teacher_record(teacher: Bundle) -> dict[str, Any]:
    """Round 0 of a run with ``--teacher``: the given bundle, not trained here."""
    training = teacher.meta.training
    return {"round": 0, "role": "teacher", "run": str(teacher.path), "given": True,
            "val": training.get("best_val", {}), "best_epoch": training.get("best_epoch"),
            "epochs": 0, "seconds": 0.0}


def _write_document(run: Path, config: TrainConfig, unl: Unlabeled, rule: PseudoRule,
                    rounds: list[dict[str, Any]], final: bool) -> Path:
    doc = {"format": FORMAT, "version": VERSION, "labelled": str(config.dataset),
           "unlabeled": {"path": str(unl.source), "kind": unl.kind, "split": unl.split,
                         "patches": int(unl.indices.size)},
           "rule": {"kind": rule.kind, "high": rule.high, "low": rule.low,
                    "min_confident": rule.min_confident, "portion": rule.portion},
           "student_init": config.student_init,
           "teacher": None if config.teacher is None else str(config.teacher), "rounds": rounds,
           "final": {"round": rounds[-1]["round"], "bundle": "bundle"} if final else None}
    return write_json_atomic(run / DOCUMENT, doc)


def read_rounds(path: str | Path) -> dict[str, Any]:
    """Read ``selftrain.json`` (a run folder or the file), its format and version checked.

    Raises:
        InputError: When it is missing, unreadable, of another format or a newer version.
    """
    p = Path(path)
    return read_document(p / DOCUMENT if p.is_dir() else p, expected=FORMAT, supported=VERSION)


def _pseudo_round(k: int, teacher: Bundle, labelled: DatasetFolder, unl: Unlabeled,
                  band_set: BandSet, rule: PseudoRule, run: Path, config: TrainConfig
                  ) -> tuple[DatasetFolder, dict[str, Any]]:
    """Pseudo-label the unlabeled imagery with ``teacher`` into ``RUN/round-k-data``.

    The balanced rule holds every probability in memory (4 bytes per unlabeled pixel) to set
    its cut-offs; the fixed rule streams.
    """
    from landslip.devices import select_device
    from landslip.models.engine import create_engine

    device = select_device("cpu" if config.accelerator == "cpu" else "auto")
    teacher.model.to(device)
    with create_engine(teacher, "torch", device) as engine:
        preds = predict_unlabeled(teacher, unl, engine, batch_size=config.batch_size)
        if rule.kind == "balanced":
            batches = list(preds)
            rule = rule.balanced(np.concatenate([b[1] for b in batches]),
                                 np.concatenate([b[2] for b in batches]),
                                 teacher.meta.threshold)
            preds = iter(batches)
        data, counts = write_round_dataset(run / f"round-{k}-data", labelled, unl, band_set,
                                           preds, rule)
    return data, counts | {"high": rule.high, "low": rule.low}


def init_from(state: dict[str, Any]) -> Any:
    """A Lightning callback that copies ``state`` (a teacher's weights) into the trained model
    (and its EMA) when fitting starts: ``--student-init teacher``.

    Args:
        state: A state dict that loads strictly into the model ``fit.train`` builds.
    """
    import lightning.pytorch as pl

    class InitFrom(pl.Callback):
        def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            pl_module.model.load_state_dict(state, strict=True)  # type: ignore[union-attr]
            ema = getattr(pl_module, "ema", None)
            if ema is not None:
                ema.module.load_state_dict(state, strict=True)

    return InitFrom()


def self_train(
    config: TrainConfig,
    progress: bool | None = None,
    callbacks: Sequence[Any] = (),
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> SelfTrainResult:
    """Train (or, with ``config.teacher``, load) a teacher, then ``config.rounds`` students on
    labelled plus pseudo-labelled data.

    Args:
        config: The configuration; ``unlabeled`` must be set.
        progress: Show progress bars (None: :func:`landslip.progress.is_enabled`).
        callbacks: Extra Lightning callbacks of every round.
        on_round: Called with each round's record when the round is done.

    Returns:
        A :class:`SelfTrainResult`.

    Raises:
        ConfigError: ``--resume``, several devices, a non-empty run folder, bad thresholds, a
            ``--teacher`` of other bands, patch size or (students from it) architecture.
        InputError: A missing ``--unlabeled`` path.
        BandError: Imagery without a band the band set needs.
        ModelError: A ``--teacher`` that is not a bundle.
        DatasetError: See :func:`open_unlabeled` and :func:`landslip.training.fit.train`.
    """
    from landslip.models.bundle import load_bundle

    t0 = time.perf_counter()
    _check_self_training(config)
    run, rule = Path(config.output), PseudoRule.from_config(config)
    labelled, band_set = open_dataset(config.dataset), resolve_band_set(config.bands)
    band_set.check_available(list(labelled.band_names))
    given = None if config.teacher is None else _open_teacher(config, labelled, band_set)
    run.mkdir(parents=True, exist_ok=True)
    unl = open_unlabeled(config, labelled, band_set, run)
    save_config(config, run / "config.yaml")
    base = config.model_copy(update={"unlabeled": None, "unlabeled_split": None,
                                     "teacher": None})
    rounds: list[dict[str, Any]] = []

    def done(record: dict[str, Any]) -> None:
        rounds.append(record)
        _write_document(run, config, unl, rule, rounds, final=False)
        logger.info("round %d/%d: validation F1 %.4f", record["round"], config.rounds,
                    record["val"].get("f1", float("nan")))
        if on_round is not None:
            on_round(record)

    def run_round(k: int, data: Path, pseudo: dict[str, Any] | None,
                  init: dict[str, Any] | None) -> Path:
        extra = [] if init is None else [init_from(init)]
        result = train(base.model_copy(update={"dataset": data, "output": run / f"round-{k}"}),
                       progress=progress, callbacks=[*callbacks, *extra])
        done(_record(k, result, pseudo))
        assert result.bundle_dir is not None
        return result.bundle_dir

    if given is None:
        teacher = load_bundle(run_round(0, labelled.path, None, None))
    else:
        teacher = given
        done(_teacher_record(given))
    for k in range(1, config.rounds + 1):
        data, pseudo = _pseudo_round(k, teacher, labelled, unl, band_set, rule, run, config)
        logger.info("round %d/%d: %d of %d unlabeled patches pseudo-labelled (%.1f%% of "
                    "their pixels confident, %.2f%% landslide)", k, config.rounds,
                    pseudo["patches_kept"], pseudo["patches_predicted"],
                    100 * pseudo["confident_share"], 100 * pseudo["landslide_share"])
        init = ({n: t.detach().cpu() for n, t in teacher.model.state_dict().items()}
                if config.student_init == "teacher" else None)
        teacher = load_bundle(run_round(k, data.path, pseudo, init))
    bundle_dir = Path(shutil.copytree(teacher.path, run / "bundle"))
    document = _write_document(run, config, unl, rule, rounds, final=True)
    return SelfTrainResult(run, bundle_dir, rounds, document, time.perf_counter() - t0)
