"""The model bundle: weights and everything needed to use them, without pickles.

A bundle is a folder (``RUN/bundle/`` after training)::

    model.safetensors   the state dict (safetensors: tensors only, nothing is unpickled)
    model.json          BundleMeta as JSON: {"format": "landslip-bundle", "version": 1,
                        "model", "model_params", "in_channels", "band_set", "band_names",
                        "mean", "std", "threshold", "patch_size", "dataset_fingerprint",
                        "landslip_version", "training", "input_profile"}

``model.json`` is written last, so a folder holding it is complete; both files are written
atomically. :class:`BundleMeta` is a pydantic model (types, ranges, one value per band);
:func:`read_bundle_meta` checks format and version with :func:`landslip.formats.check_format`
(a :class:`~landslip.errors.ModelError` for another format or a newer version) and validates the
rest. :func:`load_bundle` reads the metadata that way, rebuilds the model
from the registry by name and parameters, and loads the weights strictly. Training writes the
bundle; evaluation and prediction load it, check the data's bands with
:meth:`Bundle.check_bands` and compute inputs with :meth:`Bundle.inputs`, so all three use the
same band set and normalisation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, model_validator

from landslip import __version__
from landslip.errors import BandError, ModelError
from landslip.formats import check_format, read_document
from landslip.io.atomic import atomic_path, write_json_atomic
from landslip.spectral.bands import BandSet, normalize, resolve_band_set

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "META_FILE",
    "WEIGHTS_FILE",
    "BandProfile",
    "Bundle",
    "BundleMeta",
    "InputProfile",
    "find_bundle",
    "load_bundle",
    "read_bundle_meta",
    "save_bundle",
]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT: Final = "landslip-bundle"
BUNDLE_VERSION: Final = 1
META_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"


class BandProfile(BaseModel):
    """Percentiles of one raw band over a sample of the valid training pixels (band units)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    p1: float
    p50: float
    p99: float


class InputProfile(BaseModel):
    """What the training data looked like, to warn when an input is far outside it.

    Attributes:
        dtype: Numpy dtype name of the training images (``uint8``, ``uint16``, ``float32``).
        bands: Per raw band the model reads (the band set's ``required``), its 1st, 50th and
            99th percentiles over a sample of valid training pixels.
        pixels: Number of valid pixels in the sample.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    dtype: str
    bands: dict[str, BandProfile]
    pixels: int = Field(ge=1)


class BundleMeta(BaseModel):
    """Everything about a trained model except its weights (``model.json``).

    A pydantic model: constructing one validates the types, ranges and lengths below (a
    ``pydantic.ValidationError`` for bad values); :meth:`from_json` turns the problems of a file
    into one-line :class:`~landslip.errors.ModelError` messages.

    Attributes:
        format: Always ``"landslip-bundle"``.
        version: Format version (:data:`BUNDLE_VERSION`).
        model: Registry name (see ``landslip.models.registry.list_models``).
        model_params: Keyword parameters given to ``create_model`` (e.g. ``{"width": 16}``).
        in_channels: Number of input bands C (>= 1).
        band_set: Band set spec the model was trained on (``"bg-ndvi"``, ``"blue,green,red"``).
        band_names: Resolved band names, in input order (length C).
        mean: Per-band means used for normalisation (length C, units of the bands).
        std: Per-band standard deviations (length C, each > 0).
        threshold: Decision threshold on the probability sigmoid(logit), in (0, 1).
        patch_size: Patch size in pixels the model was trained on, or None.
        dataset_fingerprint: sha256 fingerprint of the training dataset, or None.
        landslip_version: Package version that wrote the bundle.
        training: Free-form training record (config, epochs, best validation scores, ...).
        input_profile: The training data's dtype and band percentiles
            (:mod:`landslip.evaluation.drift`), or None (bundles written before it existed:
            no drift check).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal["landslip-bundle"] = BUNDLE_FORMAT
    version: int = Field(BUNDLE_VERSION, ge=1, le=BUNDLE_VERSION)
    model: str
    model_params: dict[str, Any]
    in_channels: int = Field(ge=1)
    band_set: str
    band_names: list[str]
    mean: list[float]
    std: list[PositiveFloat]
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    patch_size: int | None = Field(None, ge=1)
    dataset_fingerprint: str | None = None
    landslip_version: str = __version__
    training: dict[str, Any] = Field(default_factory=dict)
    input_profile: InputProfile | None = None

    @model_validator(mode="after")
    def _one_value_per_band(self) -> BundleMeta:
        for name in ("band_names", "mean", "std"):
            n = len(getattr(self, name))
            if n != self.in_channels:
                raise ValueError(f"{name} must list {self.in_channels} values (in_channels), "
                                 f"got {n}")
        return self

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``model.json`` (format and version first)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, obj: Any, source: str | Path = META_FILE) -> BundleMeta:
        """Parse and validate a ``model.json`` object.

        Args:
            obj: The decoded JSON value.
            source: The file, named in messages.

        Raises:
            ModelError: For another format, a newer version, or missing or bad fields.
        """
        doc = check_format(obj, expected=BUNDLE_FORMAT, supported=BUNDLE_VERSION,
                           source=source, error=ModelError)
        unknown = sorted(set(doc) - set(cls.model_fields))
        if unknown:
            logger.warning("%s: ignoring unknown field(s) %s", source, ", ".join(unknown))
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'model.json'}: "
                f"{'missing field' if e['type'] == 'missing' else e['msg']}"
                for e in exc.errors())
            raise ModelError(f"{source}: {problems}; the bundle is damaged or was not written "
                             "by landslip: train the model again") from None


class Bundle:
    """A loaded model bundle.

    Args:
        model: The network, or None to load the weights on first use of :attr:`model`
            (``load_bundle(..., weights="lazy")``).
        meta: The parsed ``model.json``.
        path: The bundle folder.
        device: Where a lazily loaded network goes.

    Attributes:
        meta: The parsed ``model.json``.
        band_set: The resolved band set.
        path: The bundle folder.
    """

    def __init__(self, model: nn.Module | None, meta: BundleMeta, path: Path,
                 device: str = "cpu") -> None:
        self._model = model
        self._device = device
        self.meta = meta
        self.path = path
        self.band_set: BandSet = resolve_band_set(meta.band_set)
        if list(self.band_set.names) != list(meta.band_names):
            raise ModelError(
                f"model bundle {path}: band set {meta.band_set!r} resolves to "
                f"{list(self.band_set.names)} but the bundle lists {meta.band_names}"
            )

    @property
    def model(self) -> nn.Module:
        """The network in eval mode, on the bundle's device; returns logits (N, 1, H, W).

        Raises:
            ModelError: If the weights of a lazily loaded bundle are missing or do not fit.
        """
        if self._model is None:
            self._model = _load_weights(self.path, self.meta, self._device)
        return self._model

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
        meta: Description of the model (validated when it was built).

    Returns:
        The bundle folder.

    Raises:
        ModelError: If ``meta`` does not match ``model``.
    """
    from safetensors.torch import save_file

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


def read_bundle_meta(path: str | Path) -> BundleMeta:
    """Read and check a bundle's ``model.json`` without loading the weights.

    Args:
        path: Run folder, bundle folder, or the ``model.json`` file.

    Raises:
        ModelError: If no bundle is there, the file is unreadable, of another format or a newer
            version, or a field is missing or bad.
    """
    meta_path = find_bundle(path) / META_FILE
    doc = read_document(meta_path, expected=BUNDLE_FORMAT, supported=BUNDLE_VERSION,
                        error=ModelError)
    return BundleMeta.from_json(doc, meta_path)


def load_bundle(path: str | Path, device: str | torch.device = "cpu",
                weights: Literal["now", "lazy"] = "now") -> Bundle:
    """Load a model bundle without unpickling anything.

    Args:
        path: Run folder, bundle folder, or the ``model.json`` file.
        device: Device to put the model on.
        weights: ``now`` rebuilds the network and loads the weights at once; ``lazy`` only
            checks that the weights file exists and loads it on first use of
            :attr:`Bundle.model` (the ONNX Runtime engine never needs it, nor torch).

    Returns:
        The :class:`Bundle`, with the model in eval mode.

    Raises:
        ModelError: If the bundle is missing, of another format or a newer version, or the
            weights do not fit the described architecture.
    """
    folder = find_bundle(path)
    meta = read_bundle_meta(folder)
    if not (folder / WEIGHTS_FILE).is_file():
        raise ModelError(f"model bundle {folder} has no {WEIGHTS_FILE}")
    if weights == "lazy":
        return Bundle(None, meta, folder, str(device))
    return Bundle(_load_weights(folder, meta, str(device)), meta, folder, str(device))


def _load_weights(folder: Path, meta: BundleMeta, device: str) -> nn.Module:
    """The bundle's network with its weights, in eval mode on ``device``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from landslip.models.registry import create_model

    weights = folder / WEIGHTS_FILE
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
    return model
