"""The demo: the paper's whole pipeline on built-in synthetic SPOT-7-like scenes, in one call.

:func:`run_demo` runs, in ``out_dir``:

1. ``synth``: a training scene (1.5 m PAN + 6 m B, G, R, NIR, EPSG:32654, known landslides);
2. ``pansharpen``: HPF fusion of the scene to 1.5 m (``fused.tif``);
3. ``rasterize``: the scene's GeoJSON polygons (EPSG:4326) onto the fused grid;
4. ``prepare``: patches (256 px as in the paper), random 64/16/20 split;
5. ``study``: train one model per band set (bgrn, bgr, grn, bg-ndvi) and evaluate each on the
   test split (:func:`landslip.study.run_study`, landslide-class precision, recall, F1);
6. ``unseen scene``: a second scene with another seed (never seen in training), pansharpened;
7. ``predict``: the band set with the best VALIDATION F1 maps the unseen scene (GeoTIFFs and a
   GeoPackage), at the threshold chosen on validation data;
8. ``score``: the prediction against that scene's ``truth.tif``: the honest out-of-scene F1;
9. ``summary``: ``SUMMARY.md``, ``summary.json`` and ``unseen_comparison.png``.

Profiles (:data:`PROFILES`) set the sizes and the training settings; ``quick`` (default) fits in
10 minutes on a 2-core CPU, ``full`` is the paper's configuration (``unet-paper``, 100 epochs,
batch 40, threshold 0.5; for a GPU). Any other :class:`DemoProfile` (the tests use a small one)
runs the same code.

Layout of ``out_dir``::

    demo.json                  marker: the profile and settings (written first)
    scene-train/               pan.tif, ms.tif, truth.tif, landslides.geojson, preview.png,
                               scene.json, fused.tif, labels.tif
    dataset/                   the patch dataset (landslip prepare)
    study/                     table1.md/csv, table1_f1.png, runs/<set>/.../bundle, evaluation
    scene-unseen/              the second scene and its fused.tif
    prediction/                probability.tif, landslides.tif, landslides.gpkg, prediction.json
    unseen_comparison.png      true colour, truth, prediction and errors on the unseen scene
    SUMMARY.md, summary.json   the result table, the out-of-scene score, timings and paths
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from landslip import __version__
from landslip.encoding import BACKGROUND, IGNORE, LANDSLIDE
from landslip.errors import ConfigError, InputError
from landslip.evaluation.metrics import Confusion, confusion
from landslip.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from landslip.models.bundle import read_bundle_meta
from landslip.spectral.bands import resolve_band_set

__all__ = [
    "PROFILES",
    "DemoProfile",
    "DemoResult",
    "StageCallback",
    "cpu_threads",
    "run_demo",
    "score_mask",
]

log = logging.getLogger(__name__)

DEMO_FORMAT = "landslip-demo"
PAPER_BAND_SETS: tuple[str, ...] = ("bgrn", "bgr", "grn", "bg-ndvi")
"""The paper's four datasets (1) to (4)."""
UNSEEN_SEED_OFFSET = 1000
"""The unseen scene's seed is the demo seed plus this."""
_OWN = ("demo.json", "scene-train", "dataset", "study", "scene-unseen", "prediction",
        "unseen_comparison.png", "SUMMARY.md", "summary.json")
"""What the demo writes in its folder (and removes when it is run there again)."""


@dataclass(frozen=True)
class DemoProfile:
    """Sizes and training settings of a demo run.

    Attributes:
        name: Profile name.
        train_size: Training scene side in 1.5 m PAN pixels.
        unseen_size: Unseen scene side in PAN pixels.
        patch_size: Patch side in pixels.
        train: Training options (:class:`~landslip.training.config.TrainConfig` fields other
            than dataset, output, bands, batch size and seed).
        batch_size: Patches per training batch.
        threshold: Evaluation threshold: 0.5 (the paper) or ``"tuned"`` (F1-optimal on the
            validation split, then frozen); the unseen scene is mapped at the same threshold.
        figure_patches: Paper-style patch panels per evaluation.
        window: Prediction window in pixels.
    """

    name: str
    train_size: int
    unseen_size: int
    patch_size: int
    train: dict[str, Any]
    batch_size: int
    threshold: float | str
    figure_patches: int = 2
    window: int = 1024


PROFILES: dict[str, DemoProfile] = {
    # The default: fits in 10 minutes on a 2-core CPU (budgets in DESIGN.md, "demo").
    "quick": DemoProfile(
        name="quick", train_size=2048, unseen_size=1024, patch_size=256,
        train={"model": "unet", "width": 8, "depth": 2, "epochs": 10, "loss": "bce-dice",
               "lr": 0.002, "checkpoint_every_n_steps": 1000},
        batch_size=2, threshold="tuned",
    ),
    # The paper's configuration (docs/reference.md, "Training settings"): for a GPU.
    "full": DemoProfile(
        name="full", train_size=8192, unseen_size=4096, patch_size=256,
        train={"model": "unet-paper", "epochs": 100, "loss": "dice", "lr": 0.001},
        batch_size=40, threshold=0.5, figure_patches=4,
    ),
}
"""The demo profiles by name."""

StageCallback = Callable[[int, int, str, str], None]
"""``callback(stage_number, n_stages, stage_name, event)`` with event ``"start"`` or
``"done N.N s"``; the CLI prints it."""

_STAGES = ("synth", "pansharpen", "rasterize", "prepare", "study", "unseen scene", "predict",
           "score", "summary")


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes:
        out_dir: The demo folder.
        profile: The profile used.
        rows: One dict per band set: band_set, precision, recall, f1, iou, threshold,
            val_f1 (validation F1 at that threshold), run (folder); test split, landslide class.
        best_band_set: The band set with the best validation F1 (used on the unseen scene).
        unseen: Out-of-scene scores of the prediction on the unseen scene (precision, recall,
            f1, iou, tp, fp, fn, tn, threshold, landslide_fraction).
        files: Output paths by role.
        stage_seconds: Wall time of each stage.
        seconds: Total wall time.
        summary_md: Path of SUMMARY.md.
        summary_json: Path of summary.json.
    """

    out_dir: Path
    profile: DemoProfile
    rows: list[dict[str, Any]]
    best_band_set: str
    unseen: dict[str, float]
    summary_md: Path
    summary_json: Path
    files: dict[str, Path] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def _prepare_folder(out: Path) -> None:
    """Create ``out`` or clear a previous demo in it; refuse a folder holding other files."""
    if out.exists() and not out.is_dir():
        raise InputError(f"demo output {out} exists and is not a folder; choose another -o")
    if out.is_dir():
        content = [p.name for p in out.iterdir()]
        if content and "demo.json" not in content:
            raise InputError(
                f"demo output folder {out} is not empty and holds no previous demo "
                f"(found {', '.join(sorted(content)[:5])}{', ...' if len(content) > 5 else ''});"
                " choose an empty or new folder with -o"
            )
        for name in _OWN:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def score_mask(mask_path: str | Path, truth_path: str | Path,
               block: int = 1024) -> Confusion:
    """Landslide-class confusion of a predicted mask raster against a truth raster.

    Both rasters must lie on the same grid (same CRS, transform and size). Pixels where the
    truth is 255 or the prediction is nodata (255) are skipped. Read block by block.

    Args:
        mask_path: Predicted mask GeoTIFF, uint8 0/1, 255 = nodata (``landslides.tif``).
        truth_path: Truth GeoTIFF, uint8 0/1 (255 = ignore), e.g. a synthetic ``truth.tif``.
        block: Rows and columns read at a time.

    Raises:
        GridError: If the grids differ.
    """
    from landslip.errors import GridError
    from landslip.grid import iter_tiles
    from landslip.io.raster import open_raster, raster_info, read_window

    pi, ti = raster_info(mask_path), raster_info(truth_path)
    pi.grid.require_same_crs(ti.grid, "prediction and truth")
    if pi.grid.shape != ti.grid.shape or not pi.grid.aligned_with(ti.grid):
        raise GridError(f"prediction {mask_path} ({pi.grid.shape}) and truth {truth_path} "
                        f"({ti.grid.shape}) are not on the same grid; predict on the image "
                        "whose grid the truth has")
    total = Confusion(0, 0, 0, 0)
    h, w = pi.grid.shape
    with open_raster(mask_path) as pds, open_raster(truth_path) as tds:
        for win in iter_tiles(h, w, block):
            win = win.clip(h, w)
            pred = read_window(pds, win, [1])[0]
            truth = read_window(tds, win, [1], fill=IGNORE)[0].copy()
            truth[pred == IGNORE] = IGNORE
            total = total + confusion(pred == LANDSLIDE, truth)
    return total


def _comparison_figure(image: Path, truth: Path, mask: Path, out: Path, title: str,
                       max_px: int = 1024) -> Path:
    """True colour, truth, prediction and error map of a scene, downsampled to ``max_px``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from rasterio.enums import Resampling

    from landslip.io.raster import open_raster, raster_info

    info = raster_info(image)
    h, w = info.grid.shape
    step = max(1, int(np.ceil(max(h, w) / max_px)))
    oh, ow = -(-h // step), -(-w // step)
    names = [str(d).lower() if d else "" for d in info.descriptions]
    want = ("red", "green", "blue")
    idx = [names.index(b) + 1 for b in want] if all(b in names for b in want) else [3, 2, 1]
    with open_raster(image) as ds:
        rgb = ds.read(idx, out_shape=(3, oh, ow), resampling=Resampling.nearest).astype(np.float32)
    with open_raster(truth) as ds:
        t = ds.read(1, out_shape=(oh, ow), resampling=Resampling.nearest)
    with open_raster(mask) as ds:
        p = ds.read(1, out_shape=(oh, ow), resampling=Resampling.nearest)
    lo, hi = np.percentile(rgb, 2), np.percentile(rgb, 98)
    rgb = np.clip((rgb - lo) / max(float(hi - lo), 1e-6), 0, 1).transpose(1, 2, 0)
    p_ls, t_ls = p == LANDSLIDE, t == LANDSLIDE
    err = np.zeros((oh, ow), np.uint8)  # 0 TN, 1 TP, 2 FP, 3 FN
    err[p_ls & t_ls] = 1
    err[p_ls & (t == BACKGROUND)] = 2
    err[(p == BACKGROUND) & t_ls] = 3
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    axes[0].imshow(rgb)
    axes[0].set_title("true colour (fused R, G, B)")
    axes[1].imshow(t_ls, cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("truth (truth.tif)")
    axes[2].imshow(p_ls, cmap="gray", vmin=0, vmax=1)
    axes[2].set_title("prediction (landslides.tif)")
    axes[3].imshow(err, cmap=ListedColormap(["black", "white", "red", "deepskyblue"]),
                   vmin=0, vmax=3, interpolation="nearest")
    axes[3].set_title("white TP, red FP, blue FN")
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return out


def _select_best(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row with the best validation F1 (ties: the paper's order)."""
    def key(r: dict[str, Any]) -> float:
        v = r.get("val_f1")
        return float(v) if v is not None and v == v else -1.0

    return max(rows, key=key)


def _row_from_report(band_set: str, run: Path) -> dict[str, Any]:

    from landslip.evaluation.report import read_report

    rep = read_report(run / "evaluation")
    px, thr = rep["pixel"], rep["threshold"]
    val_f1 = thr.get("tuned_f1") if thr.get("mode") == "tuned" else None
    if val_f1 is None:
        meta = read_bundle_meta(run / "bundle" / "model.json")
        val_f1 = meta.training.get("best_val", {}).get("f1")
    return {"band_set": band_set, "precision": float(px["precision"]),
            "recall": float(px["recall"]), "f1": float(px["f1"]), "iou": float(px["iou"]),
            "threshold": float(thr["value"]), "threshold_mode": thr["mode"],
            "val_f1": None if val_f1 is None else float(val_f1),
            "f1_at_0.5": rep.get("pixel_at", {}).get("0.5 (paper)", {}).get("f1"),
            "run": str(run), "report": str(run / "evaluation" / "report.md")}


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{float(v):.3f}"


def _table_md(rows: Sequence[dict[str, Any]], best: str) -> str:
    lines = ["| band set | precision | recall | F1 | IoU | threshold | validation F1 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = " (best on validation)" if r["band_set"] == best else ""
        lines.append(f"| {r['band_set']}{mark} | {_fmt(r['precision'])} | {_fmt(r['recall'])} "
                     f"| {_fmt(r['f1'])} | {_fmt(r['iou'])} | {r['threshold']:.3f} "
                     f"({r['threshold_mode']}) | {_fmt(r['val_f1'])} |")
    return "\n".join(lines)


def _summary_md(res: DemoResult, settings: dict[str, Any]) -> str:
    p = res.profile
    u = res.unseen
    tr = settings["train"]
    model = tr.get("model", "unet-paper")
    size = ", ".join(f"{k} {tr[k]}" for k in ("width", "depth") if k in tr)
    lines = [
        "# landslip demo",
        "",
        f"Profile `{p.name}`, landslip {__version__}, {settings['created']}, "
        f"{settings['machine']}. Total {res.seconds:.0f} s.",
        "",
        f"Training scene: synthetic SPOT-7-like, {p.train_size} x {p.train_size} px at 1.5 m "
        f"(seed {settings['seed']}), HPF pan-sharpened, {p.patch_size} px patches, random "
        f"64/16/20 split. Model `{model}`{f' ({size})' if size else ''}, loss "
        f"{tr.get('loss', 'dice')}, {tr.get('epochs')} epoch(s), batch {p.batch_size}.",
        "",
        "## Table 1 (test split, landslide class, not averaged over classes)",
        "",
        _table_md(res.rows, res.best_band_set),
        "",
        "Thresholds marked `tuned` were chosen F1-optimally on the validation split and then "
        "frozen; the test split never influenced them.",
        "",
        "## Unseen scene (out-of-scene, the honest figure)",
        "",
        f"A second synthetic scene ({p.unseen_size} x {p.unseen_size} px, seed "
        f"{settings['unseen_seed']}), never seen in training, mapped with the `{res.best_band_set}`"
        f" model (best validation F1) at threshold {u['threshold']:.3f}, compared with its "
        "truth.tif:",
        "",
        "| precision | recall | F1 | IoU | landslide share (truth) | landslide share (predicted) |",
        "|---|---|---|---|---|---|",
        f"| {u['precision']:.3f} | {u['recall']:.3f} | {u['f1']:.3f} | {u['iou']:.3f} | "
        f"{u['truth_fraction']:.2%} | {u['predicted_fraction']:.2%} |",
        "",
        "## Files",
        "",
    ]
    for role, path in res.files.items():
        lines.append(f"- {role}: `{path}`")
    lines += ["", "## Stage times (wall clock)", "", "| stage | seconds |", "|---|---|"]
    for stage, s in res.stage_seconds.items():
        lines.append(f"| {stage} | {s:.1f} |")
    lines.append(f"| **total** | **{res.seconds:.1f}** |")
    lines += ["", "Synthetic data: these figures show the pipeline at work, not the accuracy on "
              "real imagery (see README, real-data benchmark).", ""]
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path,
    full: bool = False,
    seed: int = 0,
    profile: str | DemoProfile | None = None,
    band_sets: Sequence[str] = PAPER_BAND_SETS,
    epochs: int | None = None,
    threads: int | None = None,
    on_stage: StageCallback | None = None,
) -> DemoResult:
    """Run the whole pipeline on built-in synthetic scenes and write a summary.

    Args:
        out_dir: Output folder; created, or reused when it holds a previous demo (whose files
            are replaced). A non-empty folder without ``demo.json`` is refused.
        full: Use the paper's configuration (profile ``full``: unet-paper, 100 epochs, batch
            40; meant for a GPU).
        seed: Seed of the training scene, split and weights; the unseen scene uses
            ``seed + 1000``.
        profile: A profile name of :data:`PROFILES` or a :class:`DemoProfile`; overrides
            ``full``. Default ``quick`` (10 minutes on a 2-core CPU).
        band_sets: Band sets to train (default the paper's four).
        epochs: Override the profile's number of epochs.
        threads: Torch CPU threads during the demo (restored afterwards); None chooses
            :func:`cpu_threads` (fewer threads when other processes keep the CPUs busy).
        on_stage: Progress callback (see :data:`StageCallback`).

    Returns:
        The :class:`DemoResult` (also written as ``summary.json`` and ``SUMMARY.md``).

    Raises:
        InputError: For a bad output folder, profile or band set list.
        LandslipError: Any error of a stage, unchanged.
    """
    if profile is None:
        prof = PROFILES["full" if full else "quick"]
    elif isinstance(profile, DemoProfile):
        prof = profile
    elif profile in PROFILES:
        prof = PROFILES[profile]
    else:
        raise InputError(f"unknown demo profile {profile!r}; choose one of "
                         f"{', '.join(PROFILES)}")
    if epochs is not None:
        if epochs < 1:
            raise InputError(f"epochs must be at least 1, got {epochs}")
        prof = replace(prof, train={**prof.train, "epochs": epochs})
    sets = [resolve_band_set(s).spec for s in band_sets]
    if not sets:
        raise InputError("give at least one band set, e.g. --bands bgrn")
    if seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed}")

    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    import torch

    t_start = time.perf_counter()
    out = Path(out_dir)
    _prepare_folder(out)
    saved_threads = torch.get_num_threads()
    n_threads = cpu_threads() if threads is None else threads
    torch.set_num_threads(n_threads)
    try:
        return _run(out, prof, sets, seed, n_threads, on_stage, t_start)
    finally:
        torch.set_num_threads(saved_threads)


def cpu_threads() -> int:
    """Torch threads for the demo: the CPUs not kept busy by other processes, at least 1.

    On an oversubscribed machine (load average above the CPU count minus one) intra-op threads
    wait for each other while descheduled: two threads on a loaded 2-core machine trained 5x
    slower than one (DESIGN.md, "demo"). Uses the 1-minute load average where available.
    """
    n = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on Windows
        return n
    return max(1, min(n, n - round(load)))


class _StageClock:
    """Times the numbered stages of the demo and reports them to the callback."""

    def __init__(self, on_stage: StageCallback | None) -> None:
        self.on_stage = on_stage
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, i: int) -> Iterator[None]:
        """Run stage ``i`` (0-based) in the ``with`` block; its time is kept when it succeeds."""
        n, name = len(_STAGES), _STAGES[i]
        log.debug("[%d/%d] %s", i + 1, n, name)
        if self.on_stage is not None:
            self.on_stage(i + 1, n, name, "start")
        t0 = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t0
        if self.on_stage is not None:
            self.on_stage(i + 1, n, name, f"done {self.seconds[name]:.1f} s")


def _settings(prof: DemoProfile, sets: list[str], seed: int, n_threads: int) -> dict[str, Any]:
    """The ``demo.json`` document: what this demo runs with."""
    return {
        "format": DEMO_FORMAT, "version": 1, "landslip_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": asdict(prof), "seed": seed, "unseen_seed": seed + UNSEEN_SEED_OFFSET,
        "band_sets": sets, "train": {**prof.train, "batch_size": prof.batch_size},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {_device_name()}",
        "threads": n_threads,
    }


def _study(out: Path, dataset: Path, prof: DemoProfile, sets: list[str], seed: int
           ) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    """Train and evaluate every band set: (Table 1 rows, the best row, the StudyResult)."""
    from landslip.study import load_study_config, run_study

    study_cfg = load_study_config(
        dataset=str(dataset), band_sets=sets, batch_sizes=[prof.batch_size],
        seeds=[seed], train=dict(prof.train),
        evaluation={"threshold": prof.threshold, "figure_patches": prof.figure_patches,
                    "save_predictions": False},
    )
    study = run_study(study_cfg, out / "study")
    by_set = {str(r["band_set"]): Path(str(r["run"])) for r in study.runs}
    missing = [s for s in sets if s not in by_set]
    if missing:
        raise ConfigError(f"the study finished without runs for {', '.join(missing)}")
    rows = [_row_from_report(s, by_set[s]) for s in sets]
    return rows, _select_best(rows), study


def _unseen_scores(conf: Confusion, threshold: float, n_polygons: int) -> dict[str, float]:
    """The out-of-scene scores of the prediction (see :attr:`DemoResult.unseen`)."""
    valid = conf.tp + conf.fp + conf.fn + conf.tn
    return {"precision": conf.precision, "recall": conf.recall, "f1": conf.f1,
            "iou": conf.iou, "tp": float(conf.tp), "fp": float(conf.fp),
            "fn": float(conf.fn), "tn": float(conf.tn), "threshold": float(threshold),
            "truth_fraction": (conf.tp + conf.fn) / valid if valid else 0.0,
            "predicted_fraction": (conf.tp + conf.fp) / valid if valid else 0.0,
            "polygons": float(n_polygons)}


def _run(out: Path, prof: DemoProfile, sets: list[str], seed: int, n_threads: int,
         on_stage: StageCallback | None, t_start: float) -> DemoResult:
    """The stages of :func:`run_demo` (arguments checked, folder ready, threads set)."""
    from landslip.dataset.prepare import prepare_dataset
    from landslip.inference.predict import predict_scene
    from landslip.labels.rasterize import rasterize_labels
    from landslip.spectral.fusion import pansharpen
    from landslip.synthetic.scene import make_scene

    settings = _settings(prof, sets, seed, n_threads)
    write_json_atomic(out / "demo.json", settings)
    stage = _StageClock(on_stage)
    train_dir, unseen_dir = out / "scene-train", out / "scene-unseen"
    with stage(0):
        scene = make_scene(train_dir, size=prof.train_size, seed=seed)
    with stage(1):
        fused = pansharpen(scene.pan, scene.ms, train_dir / "fused.tif", method="hpf")
    with stage(2):
        labels = rasterize_labels(scene.landslides, fused.path, train_dir / "labels.tif")
    with stage(3):
        prepared = prepare_dataset(fused.path, labels.path, out / "dataset",
                                   patch_size=prof.patch_size, split="random", seed=seed,
                                   overwrite=True)
    with stage(4):
        rows, best, study = _study(out, prepared.dataset.path, prof, sets, seed)
    with stage(5):
        unseen_scene = make_scene(unseen_dir, size=prof.unseen_size,
                                  seed=settings["unseen_seed"])
        unseen_fused = pansharpen(unseen_scene.pan, unseen_scene.ms, unseen_dir / "fused.tif",
                                  method="hpf")
    with stage(6):
        pred = predict_scene(Path(best["run"]), unseen_fused.path, out / "prediction",
                             window=prof.window, threshold=best["threshold"], device=None,
                             threads=n_threads)
    with stage(7):
        conf = score_mask(pred.mask, unseen_scene.truth)
        unseen = _unseen_scores(conf, best["threshold"], pred.n_polygons)
    with stage(8):
        figure = _comparison_figure(
            unseen_fused.path, unseen_scene.truth, pred.mask, out / "unseen_comparison.png",
            title=f"Unseen scene (seed {settings['unseen_seed']}), {best['band_set']} model: "
                  f"P {conf.precision:.3f} R {conf.recall:.3f} F1 {conf.f1:.3f}")
        files: dict[str, Path] = {
            "training scene (PAN, MS, truth, polygons, preview)": train_dir,
            "fused training image (B, G, R, NIR, 1.5 m)": fused.path,
            "label raster": labels.path,
            "patch dataset": prepared.dataset.path,
            "Table 1 (markdown)": study.files["table_md"],
            "Table 1 (CSV)": study.files["table_csv"],
            "runs (bundles, training curves, evaluation reports and figures)":
                out / "study" / "runs",
            "best model bundle": Path(best["run"]) / "bundle",
            "unseen scene (with truth.tif)": unseen_dir,
            "fused unseen image": unseen_fused.path,
            "probability GeoTIFF": pred.probability,
            "landslide mask GeoTIFF": pred.mask,
            "landslide polygons GeoPackage": pred.polygons,
            "unseen-scene comparison figure": figure,
        }
    result = DemoResult(out_dir=out, profile=prof, rows=rows,
                        best_band_set=str(best["band_set"]), unseen=unseen,
                        summary_md=out / "SUMMARY.md", summary_json=out / "summary.json",
                        files=files, stage_seconds=stage.seconds,
                        seconds=time.perf_counter() - t_start)
    _write_summary(result, settings)
    return result


def _write_summary(res: DemoResult, settings: dict[str, Any]) -> None:
    write_text_atomic(res.summary_md, _summary_md(res, settings))
    write_json_atomic(res.summary_json, {
        **settings,
        "note": "landslide-class precision, recall, F1 and IoU (not averaged over classes)",
        "table": res.rows, "best_band_set": res.best_band_set,
        "best_selected_by": "validation F1", "unseen": res.unseen,
        "files": {k: str(v) for k, v in res.files.items()},
        "stage_seconds": res.stage_seconds, "seconds": res.seconds,
    })


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"CUDA {torch.cuda.get_device_name(0)}"
    return f"CPU only, torch {torch.get_num_threads()} thread(s)"

