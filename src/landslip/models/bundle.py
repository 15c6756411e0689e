"""The model bundle: weights and everything needed to use them, without pickles.

A bundle is a folder (``RUN/bundle/`` after training)::

    model.safetensors   the state dict (safetensors: tensors only, nothing is unpickled)
    model.json          BundleMeta as JSON: {"format": "landslip-bundle", "version": 1,
                        "model", "model_params", "in_channels", "band_set", "band_names",
                        "mean", "std", "threshold", "patch_size", "dataset_fingerprint",
                        "landslip_version", "training"}

``model.json`` is written last, so a folder holding it is complete; both files are written
atomically. :func:`load_bundle` refuses another format or a newer version, rebuilds the model
from the registry by name and parameters, and loads the weights strictly. Training writes the
bundle; evaluation and prediction load it, check the data's bands with
:meth:`Bundle.check_bands` and compute inputs with :meth:`Bundle.inputs`, so all three use the
same band set and normalisation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from landslip import __version__
from landslip.errors import BandError, ModelError
from landslip.io.atomic import atomic_path, write_json_atomic
from landslip.models.registry import create_model
from landslip.spectral.bands import BandSet, normalize, resolve_band_set

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "META_FILE",
    "WEIGHTS_FILE",
    "Bundle",
    "BundleMeta",
    "find_bundle",
    "load_bundle",
    "save_bundle",
]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "landslip-bundle"
BUNDLE_VERSION = 1
META_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class BundleMeta:
    """Everything about a trained model except its weights (``model.json``).

    Attributes:
        model: Registry name (see ``landslip.models.registry.list_models``).
        model_params: Keyword parameters given to ``create_model`` (e.g. ``{"width": 16}``).
        in_channels: Number of input bands C.
        band_set: Band set spec the model was trained on (``"bg-ndvi"``, ``"blue,green,red"``).
        band_names: Resolved band names, in input order (length C).
        mean: Per-band means used for normalisation (length C, units of the bands).
        std: Per-band standard deviations (length C).
        threshold: Decision threshold on the probability sigmoid(logit).
        patch_size: Patch size in pixels the model was trained on, or None.
        dataset_fingerprint: sha256 fingerprint of the training dataset, or None.
        landslip_version: Package version that wrote the bundle.
        training: Free-form training record (config, epochs, best validation scores, ...).
        format: Always ``"landslip-bundle"``.
        version: Format version (1).
    """

    model: str
    model_params: dict[str, Any]
    in_channels: int
    band_set: str
    band_names: list[str]
    mean: list[float]
    std: list[float]
    threshold: float = 0.5
    patch_size: int | None = None
    dataset_fingerprint: str | None = None
    landslip_version: str = __version__
    training: dict[str, Any] = field(default_factory=dict)
    format: str = BUNDLE_FORMAT
    version: int = BUNDLE_VERSION

    def validate(self) -> None:
        """Check internal consistency.

        Raises:
            ModelError: If a field has the wrong type or the lengths disagree.
        """
        if self.format != BUNDLE_FORMAT:
            raise ModelError(f"not a landslip model bundle: format is {self.format!r}, "
                             f"expected {BUNDLE_FORMAT!r}")
        if not isinstance(self.version, int) or self.version > BUNDLE_VERSION or self.version < 1:
            raise ModelError(
                f"model bundle version {self.version!r} is not supported by landslip "
                f"{__version__} (it reads version {BUNDLE_VERSION}); upgrade landslip"
            )
        if not isinstance(self.model, str) or not isinstance(self.model_params, dict):
            raise ModelError("model bundle: 'model' must be a string and 'model_params' a dict")
        if not isinstance(self.in_channels, int) or self.in_channels < 1:
            raise ModelError(f"model bundle: bad in_channels {self.in_channels!r}")
        for name in ("band_names", "mean", "std"):
            value = getattr(self, name)
            if not isinstance(value, list) or len(value) != self.in_channels:
                raise ModelError(
                    f"model bundle: {name} must list {self.in_channels} values (in_channels), "
                    f"got {value!r}"
                )
        if any(not isinstance(s, int | float) or s <= 0 for s in self.std):
            raise ModelError(f"model bundle: std must be positive numbers, got {self.std}")
        if not isinstance(self.threshold, int | float) or not 0.0 < self.threshold < 1.0:
            raise ModelError(f"model bundle: threshold must be in (0, 1), got {self.threshold!r}")

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``model.json`` (format and version first)."""
        d = asdict(self)
        return {"format": d.pop("format"), "version": d.pop("version"), **d}

    @classmethod
    def from_json(cls, obj: Any, source: str = "model.json") -> BundleMeta:
        """Parse and validate a ``model.json`` object.

        Raises:
            ModelError: For another format, an unsupported version, or missing/bad fields.
        """
        if not isinstance(obj, dict):
            raise ModelError(f"{source}: expected a JSON object, found {type(obj).__name__}")
        if obj.get("format") != BUNDLE_FORMAT:
            raise ModelError(
                f"{source} is not a landslip model bundle (format {obj.get('format')!r}, "
                f"expected {BUNDLE_FORMAT!r})"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            logger.warning("%s: ignoring unknown field(s) %s", source, ", ".join(unknown))
        missing = [f.name for f in fields(cls)
                   if f.name not in obj and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise ModelError(f"{source}: missing field(s) {', '.join(missing)}")
        meta = cls(**{k: v for k, v in obj.items() if k in known})
        meta.validate()
        return meta


class Bundle:
    """A loaded model bundle.

    Attributes:
        model: The network in eval mode, on the requested device; returns logits (N, 1, H, W).
        meta: The parsed ``model.json``.
        band_set: The resolved band set.
        path: The bundle folder.
    """

    def __init__(self, model: nn.Module, meta: BundleMeta, path: Path) -> None:
        self.model = model
        self.meta = meta
        self.path = path
        self.band_set: BandSet = resolve_band_set(meta.band_set)
        if list(self.band_set.names) != list(meta.band_names):
            raise ModelError(
                f"model bundle {path}: band set {meta.band_set!r} resolves to "
                f"{list(self.band_set.names)} but the bundle lists {meta.band_names}"
            )

    @property
    def mean(self) -> list[float]:
        """Per-band normalisation means (length C)."""
        return list(self.meta.mean)

    @property
    def std(self) -> list[float]:
        """Per-band normalisation standard deviations (length C)."""
        return list(self.meta.std)

    @property
    def threshold(self) -> float:
        """Decision threshold on the probability."""
        return float(self.meta.threshold)

    @property
    def required_multiple(self) -> int:
        """Input height and width must be multiples of this (pad before calling the model)."""
        return int(getattr(self.model, "required_multiple", 1))

    def check_bands(self, available_band_names: list[str] | tuple[str, ...]) -> None:
        """Refuse data that lacks a raw band this bundle's band set needs.

        Args:
            available_band_names: Raw band names of the data (e.g. a dataset's
                ``band_names`` or a GeoTIFF's band descriptions).

        Raises:
            BandError: Naming the missing bands, the bundle's band set and what the data has.
        """
        available = [b.lower() for b in available_band_names]
        missing = [b for b in self.band_set.required if b not in available]
        if missing:
            raise BandError(
                f"the model in {self.path} was trained on band set {self.meta.band_set!r} "
                f"({', '.join(self.band_set.names)}), which needs raw band(s) "
                f"{', '.join(missing)}; the data has {', '.join(available) or 'no named bands'}. "
                "Use data with these bands (name them with band descriptions) or a model "
                "trained on the bands you have"
            )

    def inputs(
        self,
        raw: npt.NDArray[np.generic],
        raw_names: list[str] | tuple[str, ...],
        nodata: float | None = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Compute normalised model inputs from raw bands, exactly as in training.

        Args:
            raw: Raw bands (C_raw, H, W) or (N, C_raw, H, W), any numeric dtype.
            raw_names: Names of the raw bands.
            nodata: Nodata value of ``raw`` or None.

        Returns:
            (float32 inputs (C, H, W) or (N, C, H, W) with 0 at nodata; valid mask (H, W) or
            (N, H, W) bool).
        """
        self.check_bands(raw_names)
        bands, valid = self.band_set.compute(raw, [n.lower() for n in raw_names], nodata)
        return normalize(bands, self.mean, self.std, valid), valid


def save_bundle(directory: str | Path, model: nn.Module, meta: BundleMeta) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (atomically).

    Args:
        directory: Bundle folder (created when missing).
        model: The trained network; its state dict is saved (moved to CPU).
        meta: Description of the model; validated before anything is written.

    Returns:
        The bundle folder.

    Raises:
        ModelError: If ``meta`` is inconsistent or does not match ``model``.
    """
    from safetensors.torch import save_file

    meta.validate()
    model_channels = getattr(model, "in_channels", meta.in_channels)
    if model_channels != meta.in_channels:
        raise ModelError(
            f"bundle metadata says {meta.in_channels} input bands but the model takes "
            f"{model_channels}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": BUNDLE_FORMAT,
                                             "version": str(BUNDLE_VERSION)})
    write_json_atomic(directory / META_FILE, meta.to_json())
    return directory


def find_bundle(path: str | Path) -> Path:
    """Locate the bundle folder from a run folder, a bundle folder or a ``model.json`` path.

    Raises:
        ModelError: If no ``model.json`` is found there.
    """
    p = Path(path)
    candidates = [p] if p.is_file() else [p / META_FILE, p / "bundle" / META_FILE]
    for c in candidates:
        if c.is_file():
            return c.parent
    raise ModelError(
        f"no model bundle at {p}: expected {META_FILE} there or in {p / 'bundle'} "
        "(train one with `landslip train`)"
    )


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Load a model bundle without unpickling anything.

    Args:
        path: Run folder, bundle folder, or the ``model.json`` file.
        device: Device to put the model on.

    Returns:
        The :class:`Bundle`, with the model in eval mode.

    Raises:
        ModelError: If the bundle is missing, of another format or a newer version, or the
            weights do not fit the described architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = find_bundle(path)
    meta_path = folder / META_FILE
    try:
        obj = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {meta_path}: {exc}") from exc
    meta = BundleMeta.from_json(obj, str(meta_path))
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"model bundle {folder} has no {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"cannot read weights {weights}: {exc}") from exc
    model = create_model(meta.model, meta.in_channels, **meta.model_params)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"weights in {weights} do not fit model {meta.model!r} {meta.model_params}: {exc}"
        ) from exc
    model.to(device).eval()
    return Bundle(model, meta, folder)
