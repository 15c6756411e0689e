"""The band-set study: the paper's Table 1 (band set x batch size), trained and evaluated.

A study trains one model per (dataset, band set, batch size, seed), evaluates each on the test
split and tabulates landslide-class precision, recall and F1 (mean and spread over seeds).
Several prepared datasets can be named (for example a random and a block split of the same
scene), so that their F1 can be compared side by side.

Layout of the study folder::

    STUDY/
      study.yaml                 the resolved configuration (absolute dataset paths)
      runs/<dataset>/<band set>-b<batch>-s<seed>/      one training run folder each
          bundle/ ...            (landslip.training.fit)
          evaluation/report.json the evaluation; its presence marks the run finished
      runs.csv                   one row per finished run
      table1.csv, table1.md      Table 1: mean and spread over seeds
      table1_f1.png              F1 by band set and batch size, one panel per dataset

Resume: running the same study again skips every run whose ``evaluation/report.json`` exists,
evaluates runs whose bundle exists, continues runs that have a training checkpoint
(``resume=True``) and starts the others. The tables are rewritten after each finished run.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from landslip.errors import ConfigError, DatasetError
from landslip.evaluation.figures import plot_study
from landslip.evaluation.report import markdown_table
from landslip.io.atomic import write_text_atomic
from landslip.spectral.bands import resolve_band_set

__all__ = [
    "DEFAULT_BAND_SETS",
    "DEFAULT_BATCH_SIZES",
    "EvaluationOptions",
    "StudyConfig",
    "StudyResult",
    "load_study_config",
    "run_study",
    "summarize",
]

log = logging.getLogger(__name__)

DEFAULT_BAND_SETS: tuple[str, ...] = ("bgrn", "bgr", "grn", "bg-ndvi")
"""The paper's four datasets (1) to (4)."""

DEFAULT_BATCH_SIZES: tuple[int, ...] = (8, 16, 24, 32, 40)
"""The paper's batch sizes."""

_STUDY_KEYS = ("dataset", "output", "bands", "batch_size", "seed", "resume")
"""TrainConfig options the study sets itself (not allowed under ``train``)."""

_METRICS = ("precision", "recall", "f1", "iou", "detection_rate", "false_alarm_rate")


class EvaluationOptions(BaseModel):
    """How each run is evaluated (``evaluation:`` in the study YAML)."""

    model_config = ConfigDict(extra="forbid")

    split: Literal["test", "val"] = Field("test", description="Split scored in the table.")
    threshold: float | Literal["tuned"] = Field(
        0.5, description="0.5 as in the paper, another number in (0, 1), or 'tuned' "
        "(F1-optimal on the validation split, then frozen).",
    )
    figure_patches: int = Field(2, ge=0, description="Paper-style patch panels per run.")
    save_predictions: bool = Field(False, description="Keep probabilities/masks of each run.")
    batch_size: int = Field(16, ge=1, description="Patches per forward pass.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where evaluation runs; auto = CUDA when present, else CPU."
    )

    @field_validator("threshold")
    @classmethod
    def _threshold_range(cls, v: float | str) -> float | str:
        if isinstance(v, float) and not 0.0 < v < 1.0:
            raise ValueError("must lie strictly between 0 and 1")
        return v


class StudyConfig(BaseModel):
    """A band-set study (``landslip study CONFIG.yaml``); unknown keys are rejected.

    Dataset paths relative to the YAML file are resolved against the file's folder.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: Path | None = Field(None, description="One prepared dataset folder.")
    datasets: dict[str, Path] | None = Field(
        None, description="Several named datasets, e.g. {random: ds-random, blocks: ds-blocks}.",
    )
    band_sets: list[str] = Field(default_factory=lambda: list(DEFAULT_BAND_SETS),
                                 min_length=1, description="Band sets to compare.")
    batch_sizes: list[int] = Field(default_factory=lambda: list(DEFAULT_BATCH_SIZES),
                                   min_length=1, description="Batch sizes to compare.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1,
                             description="Seeds; each combination is trained once per seed.")
    train: dict[str, Any] = Field(
        default_factory=dict, description="Training options (TrainConfig) for every run, e.g. "
        "{model: unet, width: 16, epochs: 20}; not dataset/output/bands/batch_size/seed.",
    )
    evaluation: EvaluationOptions = Field(default_factory=EvaluationOptions)

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v):
            raise ValueError("batch sizes must be at least 1")
        if len(set(v)) != len(v):
            raise ValueError("batch sizes are listed twice")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError("seeds must be distinct non-negative integers")
        return v

    @field_validator("band_sets")
    @classmethod
    def _band_sets(cls, v: list[str]) -> list[str]:
        out = [s.strip() for s in v]
        for spec in out:
            resolve_band_set(spec)  # BandError (a ValueError) becomes a validation error
        if len(set(out)) != len(out):
            raise ValueError("a band set is listed twice")
        return out

    @field_validator("train")
    @classmethod
    def _train_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        from landslip.training.config import TrainConfig

        v = {str(k).replace("-", "_"): val for k, val in v.items()}
        taken = sorted(set(v) & set(_STUDY_KEYS))
        if taken:
            raise ValueError(f"the study sets {', '.join(taken)} for each run; remove it from "
                             "'train' (use band_sets, batch_sizes, seeds)")
        TrainConfig(dataset=Path("."), output=Path("."), **v)  # unknown keys / bad values
        return v

    @model_validator(mode="after")
    def _one_dataset_kind(self) -> StudyConfig:
        if (self.dataset is None) == (self.datasets is None):
            raise ValueError("give either 'dataset' (one folder) or 'datasets' (name: folder)")
        if self.datasets is not None:
            if not self.datasets:
                raise ValueError("'datasets' is empty")
            for name in self.datasets:
                if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                    raise ValueError(f"dataset name {name!r} must be letters, digits, _ . -")
        return self

    def named_datasets(self) -> dict[str, Path]:
        """{name: folder}; a single ``dataset`` is named after its folder."""
        if self.datasets is not None:
            return dict(self.datasets)
        assert self.dataset is not None  # guaranteed by the validator
        return {self.dataset.name or "dataset": self.dataset}

    def n_runs(self) -> int:
        """Number of training runs the study makes."""
        return (len(self.named_datasets()) * len(self.band_sets) * len(self.batch_sizes)
                * len(self.seeds))


def load_study_config(path: str | Path | None = None, **data: Any) -> StudyConfig:
    """Read and validate a study YAML file (or keyword data when ``path`` is None).

    Keyword data win over the file. Relative dataset paths are resolved against the YAML
    file's folder.

    Raises:
        ConfigError: One line naming the file, line and column of malformed YAML, or the file
            and key of an unknown key or a bad value (see
            :func:`landslip.training.config.load_yaml_config`).
    """
    from landslip.training.config import load_yaml_config

    cfg = load_yaml_config(path, StudyConfig, data)
    base = Path.cwd() if path is None else Path(path).resolve().parent
    if cfg.dataset is not None:
        cfg.dataset = (base / cfg.dataset).resolve()
    if cfg.datasets is not None:
        cfg.datasets = {k: (base / v).resolve() for k, v in cfg.datasets.items()}
    return cfg


@dataclass(frozen=True)
class _Run:
    dataset: str
    dataset_path: Path
    band_set: str
    batch_size: int
    seed: int
    folder: Path

    @property
    def report(self) -> Path:
        return self.folder / "evaluation" / "report.json"


def _slug(spec: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "_", spec.lower()).strip("_") or "bands"


def _plan(cfg: StudyConfig, out: Path) -> list[_Run]:
    runs = []
    for name, path in cfg.named_datasets().items():
        for bs in cfg.band_sets:
            for b in cfg.batch_sizes:
                for seed in cfg.seeds:
                    runs.append(_Run(name, path, bs, b, seed,
                                     out / "runs" / name / f"{_slug(bs)}-b{b}-s{seed}"))
    return runs


@dataclass
class StudyResult:
    """What :func:`run_study` produced.

    Attributes:
        out_dir: The study folder.
        rows: Table 1 rows (one per dataset, band set and batch size with a finished run).
        runs: One record per finished run.
        trained: Runs trained (or continued) by this call.
        skipped: Runs found finished and skipped.
        files: Output files by role.
    """

    out_dir: Path
    rows: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    trained: int
    skipped: int
    files: dict[str, Path]


def _run_record(run: _Run) -> dict[str, Any]:
    from landslip.evaluation.report import read_report
    from landslip.models.bundle import META_FILE, read_bundle_meta

    rep = read_report(run.report)
    px, obj = rep["pixel"], rep.get("objects", {})
    rec: dict[str, Any] = {"dataset": run.dataset, "band_set": run.band_set,
                           "batch_size": run.batch_size, "seed": run.seed}
    rec.update({k: float(px[k]) for k in ("precision", "recall", "f1", "iou")})
    rec["detection_rate"] = obj.get("detection_rate")
    rec["false_alarm_rate"] = obj.get("false_alarm_rate")
    rec["threshold"] = rep["threshold"]["value"]
    training: dict[str, Any] = {}
    if (run.folder / "bundle" / META_FILE).is_file():
        training = read_bundle_meta(run.folder).training
    rec["best_val_f1"] = training.get("best_val", {}).get("f1")
    rec["epochs"] = training.get("epochs_completed")
    rec["run"] = str(run.folder)
    return rec


def _mean_std(vals: Sequence[float | None]) -> tuple[float | None, float | None]:
    xs = [float(v) for v in vals if v is not None]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table 1 rows from run records: mean and sample standard deviation over seeds.

    Args:
        records: One dict per run with dataset, band_set, batch_size, seed and the metrics.

    Returns:
        One row per (dataset, band set, batch size), in first-seen order, with ``n_seeds``
        and ``{metric}_mean`` / ``{metric}_std`` (std None with one seed).
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["band_set"], int(r["batch_size"])), []).append(r)
    rows = []
    for (ds, bs, b), recs in groups.items():
        row: dict[str, Any] = {"dataset": ds, "band_set": bs, "batch_size": b,
                               "n_seeds": len(recs)}
        for m in _METRICS:
            row[f"{m}_mean"], row[f"{m}_std"] = _mean_std([r.get(m) for r in recs])
        rows.append(row)
    return rows


def _csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def _markdown(cfg: StudyConfig, rows: list[dict[str, Any]], n_done: int, n_total: int) -> str:
    ev = cfg.evaluation
    seeds = ", ".join(str(s) for s in cfg.seeds)
    lines = ["# Band-set study: Table 1", "",
             f"Landslide-class precision, recall and F1 on the `{ev.split}` split (label 1 only, "
             "not averaged over both classes; pixels labelled 255 excluded), at threshold "
             f"{ev.threshold}. Mean ± sample standard deviation over seeds ({seeds}).", "",
             f"Runs finished: {n_done} of {n_total}.", ""]
    train = ", ".join(f"{k}={v}" for k, v in cfg.train.items()) or "defaults (the paper's)"
    lines += [f"Training options: {train}.", ""]
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        lines += [f"## Dataset `{ds}` ({cfg.named_datasets()[ds]})", ""]
        body = [[r["band_set"], r["batch_size"], _pm(r["precision_mean"], r["precision_std"]),
                 _pm(r["recall_mean"], r["recall_std"]), _pm(r["f1_mean"], r["f1_std"]),
                 r["n_seeds"]] for r in rows if r["dataset"] == ds]
        lines += [markdown_table(["band set", "batch size", "precision", "recall", "F1",
                                  "seeds"], body), ""]
    names = list(cfg.named_datasets())
    if len(names) > 1:
        lines += ["## F1 side by side", ""]
        body = []
        for bs in cfg.band_sets:
            for b in cfg.batch_sizes:
                cells: list[Any] = [bs, b]
                for ds in names:
                    match = [r for r in rows if r["dataset"] == ds and r["band_set"] == bs
                             and r["batch_size"] == b]
                    cells.append(_pm(match[0]["f1_mean"], match[0]["f1_std"]) if match
                                 else "-")
                body.append(cells)
        lines += [markdown_table(["band set", "batch size", *[f"F1 {n}" for n in names]],
                                 body), ""]
    lines += ["Figure: [table1_f1.png](table1_f1.png). Every run: [runs.csv](runs.csv).", ""]
    return "\n".join(lines)


def _write_outputs(cfg: StudyConfig, out: Path, records: list[dict[str, Any]],
                   n_total: int) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    rows = summarize(records)
    run_cols = ["dataset", "band_set", "batch_size", "seed", "precision", "recall", "f1", "iou",
                "detection_rate", "false_alarm_rate", "threshold", "best_val_f1", "epochs",
                "run"]
    table_cols = ["dataset", "band_set", "batch_size", "n_seeds"] + [
        f"{m}_{s}" for m in _METRICS for s in ("mean", "std")]
    files = {
        "runs_csv": write_text_atomic(out / "runs.csv", _csv_text(records, run_cols)),
        "table_csv": write_text_atomic(out / "table1.csv", _csv_text(rows, table_cols)),
        "table_md": write_text_atomic(out / "table1.md",
                                      _markdown(cfg, rows, len(records), n_total) + "\n"),
    }
    if rows:
        files["plot"] = plot_study(rows, out / "table1_f1.png",
                                   title=f"Landslide-class F1 by band set and batch size "
                                   f"({cfg.evaluation.split} split)")
    return rows, files


def _save_config(cfg: StudyConfig, out: Path) -> None:
    import yaml

    data = cfg.model_dump(mode="json", exclude_none=True)
    write_text_atomic(out / "study.yaml", "# landslip study configuration (resolved)\n"
                      + yaml.safe_dump(data, sort_keys=False))


def _check_inputs(cfg: StudyConfig) -> None:
    """Check every dataset and band set before training anything."""
    from landslip.dataset.folder import open_dataset

    for name, path in cfg.named_datasets().items():
        ds = open_dataset(path)
        for spec in cfg.band_sets:
            resolve_band_set(spec).check_available(ds.band_names)
        if ds.split_indices(cfg.evaluation.split).size == 0:
            raise DatasetError(f"dataset {name!r} ({path}) has no {cfg.evaluation.split} "
                               "patches to evaluate")


def _open_folder(cfg: StudyConfig, out: Path) -> Path:
    """Create or reuse the study folder (refusing other options) and save ``study.yaml``."""
    saved = out / "study.yaml"
    if saved.is_file():
        previous = load_study_config(saved)
        for key in ("train", "evaluation"):
            if getattr(previous, key) != getattr(cfg, key):
                raise ConfigError(
                    f"{out} holds a study made with other '{key}' options "
                    f"({getattr(previous, key)}); finished runs would not be comparable. Use "
                    "another output folder"
                )
    out.mkdir(parents=True, exist_ok=True)
    _save_config(cfg, out)
    return saved


def _train_run(run: _Run, cfg: StudyConfig) -> bool:
    """Train (or continue) ``run`` unless its bundle exists; True when it trained."""
    from landslip.training.config import TrainConfig
    from landslip.training.fit import train

    if (run.folder / "bundle" / "model.json").is_file():
        return False
    resume = (run.folder / "checkpoints" / "last.ckpt").is_file()
    log.info("training %s / %s / batch %d / seed %d%s", run.dataset, run.band_set,
             run.batch_size, run.seed, " (resuming)" if resume else "")
    train(TrainConfig(dataset=run.dataset_path, output=run.folder, bands=run.band_set,
                      batch_size=run.batch_size, seed=run.seed, resume=resume, **cfg.train))
    return True


def run_study(config: StudyConfig | str | Path, out_dir: str | Path,
              max_runs: int | None = None) -> StudyResult:
    """Train and evaluate every run of a study (resuming), then write Table 1.

    Args:
        config: A :class:`StudyConfig` or the path of a study YAML file.
        out_dir: The study folder (created; reused to resume).
        max_runs: Train at most this many runs in this call (the rest stays for a later call);
            None for all.

    Returns:
        The :class:`StudyResult`.

    Raises:
        ConfigError: Bad configuration, or a study folder made with another configuration.
        DatasetError: A dataset is missing or lacks a test/validation split.
        BandError: A dataset lacks bands a band set needs.
    """
    from landslip.devices import select_device
    from landslip.evaluation.evaluate import EvaluateOptions, evaluate
    from landslip.progress import track

    cfg = config if isinstance(config, StudyConfig) else load_study_config(config)
    out = Path(out_dir)
    _check_inputs(cfg)
    saved = _open_folder(cfg, out)

    runs = _plan(cfg, out)
    todo = [r for r in runs if not r.report.is_file()]
    skipped = len(runs) - len(todo)
    if skipped:
        log.info("resuming: %d of %d runs already finished", skipped, len(runs))
    if max_runs is not None:
        todo = todo[:max_runs]
    trained = 0
    records = [_run_record(r) for r in runs if r.report.is_file()]
    rows, files = _write_outputs(cfg, out, records, len(runs))
    for run in track(todo, total=len(todo), description="study"):
        t0 = time.perf_counter()
        trained += _train_run(run, cfg)
        ev = cfg.evaluation
        evaluate(run.folder, run.dataset_path, EvaluateOptions(
                 split=ev.split, threshold=ev.threshold,
                 out_dir=run.folder / "evaluation", figure_patches=ev.figure_patches,
                 save_predictions=ev.save_predictions, batch_size=ev.batch_size,
                 device=select_device(None if ev.device == "auto" else ev.device)))
        records = [_run_record(r) for r in runs if r.report.is_file()]
        rows, files = _write_outputs(cfg, out, records, len(runs))
        rec = _run_record(run)
        log.info("%s / %s / batch %d / seed %d: P %.3f R %.3f F1 %.3f (%.0f s)", run.dataset,
                 run.band_set, run.batch_size, run.seed, rec["precision"], rec["recall"],
                 rec["f1"], time.perf_counter() - t0)
    files["config"] = saved
    return StudyResult(out_dir=out, rows=rows, runs=records, trained=trained, skipped=skipped,
                       files=files)
