"""The training configuration, and the one YAML + pydantic loader of every landslip config file.

:func:`load_yaml_config` reads a YAML mapping (keys may use ``-`` or ``_``), lays explicit
options over it and validates the result with a pydantic model; ``landslip train``
(:class:`TrainConfig`) and ``landslip study`` (``landslip.study.StudyConfig``) both use it.
Its errors are one line: ``FILE:LINE:COLUMN: reason`` for malformed YAML and ``FILE: key:
reason`` for a key that fails validation (``options: key: reason`` for an explicit option).

Defaults of :class:`TrainConfig` follow the paper (docs/reference.md, "Training settings"): the
Figure 4 U-Net (``unet-paper``), dice loss, Adam with learning rate 0.001, 100 epochs, batch size
40. Unknown keys are refused (``extra="forbid"``), so a typo in a config file is an error, not a
silently ignored option. Precedence: command-line options > YAML file > defaults. The resolved
configuration is saved in the run folder as ``config.yaml`` and in the model bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from landslip.errors import ConfigError
from landslip.io.atomic import write_text_atomic

__all__ = [
    "TrainConfig",
    "load_config",
    "load_yaml_config",
    "resolve_config",
    "save_config",
]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class TrainConfig(BaseModel):
    """Every option of a training run (``landslip train``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dataset: Path = Field(description="Dataset folder written by `landslip prepare`.")
    output: Path = Field(description="Run folder: checkpoints, metrics, figures, bundle.")
    bands: str = Field(
        "bgrn",
        description="Band set: bgrn, bgr, grn, bg-ndvi, rgb, or a comma list such as "
        "blue,green,ndvi.",
    )
    model: str = Field(
        "unet-paper",
        description="Registered model name (unet-paper = the paper's Figure 4; unet = same "
        "architecture with configurable width/depth/upsampling).",
    )
    width: int | None = Field(
        None, ge=1, description="Base width of `unet` (64 in the paper, 16 is about 10x faster); "
        "switches unet-paper to unet when given.",
    )
    depth: int | None = Field(
        None, ge=1, le=8, description="Number of 2x2 poolings of `unet` (4 in the paper).",
    )
    upsampling: Literal["transpose", "bilinear", "nearest"] | None = Field(
        None, description="Decoder up-sampling of `unet` (transpose = the paper).",
    )
    encoder: str | None = Field(
        None, description="Encoder of the smp models (smp-unet, smp-unetplusplus, smp-fpn, "
        "smp-deeplabv3plus): resnet18, resnet34 (their default), efficientnet-b0, tu-NAME, ...",
    )
    encoder_weights: str | None = Field(
        None, description="Pretrained encoder weights of an smp model: imagenet (downloaded, "
        "needs a network) or PATH to a .safetensors or torch state dict file; copied into the "
        "model before training (default: random).",
    )
    loss: str = Field("dice", description="Loss: dice (paper), bce, bce-dice, focal, tversky.")
    loss_params: dict[str, float] = Field(
        default_factory=dict, description="Keyword parameters of the loss, e.g. {alpha: 0.3}.",
    )
    optimizer: Literal["adam", "adamw"] = Field("adam", description="Optimizer (the paper: adam).")
    lr: float = Field(1e-3, gt=0, description="Learning rate (the default is the paper's).")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay of the optimizer.")
    schedule: Literal["none", "cosine", "onecycle"] = Field(
        "none", description="Learning-rate schedule, stepped per batch: none (the paper), cosine "
        "(warm-up, then cosine decay to 0) or onecycle (torch's OneCycleLR, max_lr = lr).",
    )
    warmup_epochs: float = Field(
        0.0, ge=0, description="Warm-up of the schedule in epochs (fractions allowed; onecycle: "
        "its rising phase, 0 = 30% of the run).",
    )
    photometric: float = Field(
        0.0, ge=0, description="Strength of the random per-band brightness, contrast, gamma and "
        "noise of training patches (0 = off, 1 = moderate); nodata untouched.",
    )
    scale_range: tuple[float, float] | None = Field(
        None, description="Random zoom factors [lo, hi] of training patches, e.g. 0.75,1.25 "
        "(crop when zooming in, pad with ignored pixels when zooming out); none = off.",
    )
    ema: float | None = Field(
        None, gt=0, lt=1, description="Decay of an exponential moving average of the weights "
        "(e.g. 0.999), which is validated and saved in the bundle; none = off.",
    )
    epochs: int = Field(100, ge=1, description="Number of epochs (the default is the paper's).")
    batch_size: int = Field(40, ge=1, description="Patches per batch per device (the default is "
                            "the paper's).")
    augment: bool = Field(True, description="Random flips/rotations of training patches.")
    seed: int = Field(0, ge=0, description="Seed of weights, shuffling and augmentation.")
    threshold: float = Field(
        0.5, gt=0, lt=1, description="Decision threshold on the probability for validation "
        "metrics and the bundle.",
    )
    early_stopping: int | None = Field(
        None, ge=1, description="Stop after this many epochs without a better validation F1.",
    )
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = Field(
        "auto", description="Device kind; auto = CUDA when present, else MPS (Apple), else CPU.",
    )
    devices: int = Field(1, ge=1, description="Number of devices (processes) per machine; > 1 "
                         "uses DDP.")
    num_nodes: int = Field(
        1, ge=1, description="Number of machines; > 1 uses DDP across them: run the same command "
        "once per machine with MASTER_ADDR, MASTER_PORT and NODE_RANK set.",
    )
    strategy: Literal["auto", "ddp", "ddp_spawn"] = Field(
        "auto", description="Multi-device strategy; auto = ddp when devices or num_nodes > 1 "
        "(gloo on CPU).",
    )
    precision: Literal["32", "16-mixed", "bf16-mixed"] = Field(
        "32", description="Numeric precision (Lightning's): 32 (float32), 16-mixed (GPU only) "
        "or bf16-mixed (GPU, or a CPU with bf16 instructions; about 3x faster on AMX CPUs).",
    )
    memory_format: Literal["channels_last", "contiguous"] = Field(
        "channels_last", description="Memory layout of the model and its batches: "
        "channels_last (NHWC, 1.3-1.7x faster on CPUs) or contiguous (NCHW, the earlier layout).",
    )
    compile: Literal["auto", "on", "off"] = Field(
        "auto", description="torch.compile the model (falls back to eager if compiling fails); "
        "auto = off: on CPUs it compiled for about a minute and trained no faster.",
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes per device.")
    max_train_batches: int | None = Field(
        None, ge=1, description="Use at most this many training batches per epoch (quick runs).",
    )
    max_val_batches: int | None = Field(
        None, ge=1, description="Use at most this many validation batches per epoch.",
    )
    checkpoint_every_n_steps: int = Field(
        20, ge=1, description="Also save last.ckpt every N training steps (for --resume after a "
        "crash mid-epoch).",
    )
    resume: bool = Field(False, description="Continue the run in `output` from last.ckpt.")
    # -- self-training (landslip.training.selftrain); keep this block last --------------------
    unlabeled: Path | None = Field(
        None, description="Self-training: imagery of the new event without labels, a dataset "
        "folder or a GeoTIFF image; the teacher's confident pixels become pseudo-labels.",
    )
    unlabeled_split: Literal["train", "val", "test"] | None = Field(
        None, description="Use only this split of the --unlabeled dataset folder (default: all "
        "its patches); its labels are never read.",
    )
    rounds: int = Field(1, ge=1, le=20, description="Self-training rounds after the teacher.")
    pseudo_threshold: float = Field(
        0.9, gt=0.5, le=1.0, description="Fixed rule: pseudo-label landslide where p >= this and "
        "background where p <= --pseudo-low; other pixels are ignored.",
    )
    pseudo_low: float | None = Field(
        None, ge=0.0, lt=0.5, description="Fixed rule: background where p <= this (default: 1 - "
        "--pseudo-threshold).",
    )
    pseudo_min_confident: float = Field(
        0.5, ge=0.0, le=1.0, description="Fixed rule: drop an unlabeled patch where fewer than "
        "this share of its valid pixels are confident.",
    )
    pseudo_rule: Literal["fixed", "balanced"] = Field(
        "balanced", description="Pseudo-labels: balanced = per class the teacher's most "
        "confident --pseudo-portion of the pixels it predicts as that class at its own threshold "
        "(class-balanced, CBST); fixed = --pseudo-threshold and --pseudo-low.",
    )
    pseudo_portion: float = Field(
        0.5, gt=0.0, le=1.0, description="Balanced rule: share of each predicted class kept "
        "as pseudo-labels (its most confident pixels).",
    )
    student_init: Literal["fresh", "teacher"] = Field(
        "teacher", description="Start each student from fresh weights or from its teacher's "
        "weights (fine-tuning; the teacher's architecture must be the configured one).",
    )
    teacher: Path | None = Field(
        None, description="Self-training: an existing bundle or run folder as the first teacher "
        "(round 0 is not trained); its bands and patch size must be the run's.",
    )

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_alias(cls, v: Any) -> Any:
        """``32`` as a number (YAML) and Lightning's ``32-true`` both mean ``"32"``."""
        return "32" if v in (32, "32-true") else v

    @field_validator("scale_range", mode="before")
    @classmethod
    def _scale_range(cls, v: Any) -> Any:
        """``"0.75,1.25"`` (a command-line option) is the pair [0.75, 1.25]."""
        if isinstance(v, str):
            parts = [p for p in v.replace(" ", ",").split(",") if p]
            if v.strip().lower() in ("none", "off", ""):
                return None
            return parts
        return v

    @field_validator("scale_range")
    @classmethod
    def _scale_order(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 < v[0] <= v[1]:
            raise ValueError(f"must be [lo, hi] with 0 < lo <= hi, got {list(v)}")
        return v

    @field_validator("bands", "model", "loss")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    def model_name_and_params(self) -> tuple[str, dict[str, Any]]:
        """The registry name and parameters this config builds.

        ``unet-paper`` with any of width/depth/upsampling set becomes ``unet`` with those
        parameters (the rest stay at the paper's values).
        """
        params: dict[str, Any] = {k: v for k, v in (("width", self.width), ("depth", self.depth),
                                                     ("upsampling", self.upsampling))
                                  if v is not None}
        if self.model == "unet-paper" and params:
            logger.info("width/depth/upsampling given: using model 'unet' %s", params)
            return "unet", params
        return self.model, params

    def to_yaml_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe dictionary (paths as strings)."""
        return self.model_dump(mode="json")


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file, keys with ``-`` spelled ``_`` (empty file: {})."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        reason = " ".join(str(exc.problem or exc.context or "malformed YAML").split())
        raise ConfigError(f"{where}: {reason} (not valid YAML; fix the file)") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML: {reason}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of options (key: value lines), found a "
                          f"{type(loaded).__name__}")
    return {str(k).replace("-", "_"): v for k, v in loaded.items()}


def _validation_message(
    exc: ValidationError,
    model: type[BaseModel],
    source: str,
    explicit: frozenset[str] = frozenset(),
) -> str:
    """One line naming every invalid key: ``SOURCE: key: reason; ...``.

    Args:
        exc: The pydantic error.
        model: The model that was validated (its fields are listed after an unknown top-level
            key).
        source: Where the values came from (a file name).
        explicit: Top-level keys given as explicit options, reported as ``options: key``.
    """
    parts = []
    unknown = False
    for err in exc.errors():
        origin = "options" if err["loc"] and err["loc"][0] in explicit else source
        where = ": ".join([origin, *([".".join(str(p) for p in err["loc"])] if err["loc"] else [])])
        if err["type"] == "extra_forbidden":
            unknown = unknown or len(err["loc"]) == 1  # a top-level key: list the valid ones
            parts.append(f"{where}: unknown key")
            continue
        # A ValueError raised by a validator: its own message, without pydantic's prefix.
        reason = str(err.get("ctx", {}).get("error", err["msg"]))
        parts.append(f"{where}: {' '.join(reason.split())}")
    valid = f". Valid keys: {', '.join(model.model_fields)}" if unknown else ""
    return "; ".join(parts) + valid


def load_yaml_config(
    path: str | Path | None, model: type[M], overrides: Mapping[str, Any] | None = None
) -> M:
    """Validate a YAML file of options, with explicit options laid over it, as ``model``.

    Args:
        path: YAML file holding one mapping (keys may use ``-`` or ``_``; an empty file is an
            empty mapping), or None for no file.
        model: The pydantic model to build (:class:`TrainConfig`, ``StudyConfig``).
        overrides: Options that win over the file; None values count as not given.

    Returns:
        The validated model.

    Raises:
        ConfigError: One line: ``FILE: cannot read ...``, ``FILE:LINE:COLUMN: reason`` for
            malformed YAML, ``FILE: expected a mapping ...``, or ``FILE: key: reason`` (and
            ``options: key: reason``) for unknown keys and bad values.
    """
    data = _read_yaml_mapping(Path(path)) if path is not None else {}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    data.update(given)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        source = "options" if path is None else str(path)
        raise ConfigError(_validation_message(exc, model, source, frozenset(given))) from None


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Build a :class:`TrainConfig` from an optional YAML file and overrides.

    Args:
        path: YAML file with a mapping of options (keys may use ``-`` or ``_``), or None.
        **overrides: Options that win over the file (None values are ignored, so unset CLI
            options keep the file's or default values).

    Raises:
        ConfigError: If the file is unreadable, not a mapping, has unknown keys or bad values.
    """
    return load_yaml_config(path, TrainConfig, overrides)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the resolved configuration as YAML (atomically) and return the path."""
    import yaml

    text = yaml.safe_dump(config.to_yaml_dict(), sort_keys=False)
    return write_text_atomic(path, "# landslip training configuration (resolved)\n" + text)


def resolve_config(
    config_file: str | Path | None = None, resume: bool = False, **options: Any
) -> TrainConfig:
    """Resolve the configuration of ``landslip train`` from a YAML file and options.

    Precedence: options (those not None) > ``config_file`` > the run's saved ``config.yaml``
    (only when resuming without a config file) > defaults.

    Args:
        config_file: YAML file of options, or None.
        resume: Continue the run in ``options["output"]``; its saved configuration is the base.
        **options: Options by field name (None = not given).

    Raises:
        ConfigError: For unknown keys or bad values, or a missing dataset/output.
    """
    output = options.get("output")
    if resume and config_file is None and output is not None:
        saved = Path(output) / "config.yaml"
        if saved.is_file():
            config_file = saved
    options["resume"] = resume
    return load_config(config_file, **options)
