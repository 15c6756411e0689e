"""Ensembles: one model that averages the landslide probabilities of several trained models.

:class:`EnsembleModel` runs every member on the same normalised input and returns the LOGIT
of the mean of their probabilities, ``logit(mean_i sigmoid(member_i(x)))``, so that every
consumer that applies a sigmoid (the engines, the ONNX export, the losses) sees the mean
probability. The mean is clamped to ``[EPS, 1 - EPS]`` first, so the logit stays finite
(``|logit| <= 13.8``; a probability below ``EPS`` encodes as 0 in the uint8 probability
anyway). It is registered as ``ensemble``, whose parameters list the members (registry name
and parameters each), so an ensemble bundle is rebuilt from ``model.json`` and
``model.safetensors`` like any other bundle, without a network connection; member ``i``'s
weights are stored under the keys ``members.i.``.

:func:`build_ensemble` makes an ensemble bundle from run or bundle folders
(``landslip ensemble``): the members must read the same bands with the same normalisation
(dataset statistics) and training input profile, since one input feeds them all; the
bundle's threshold is the mean of the members' thresholds (``landslip evaluate ...
--threshold tuned`` re-tunes it on validation as for any bundle).

Example:
    >>> from landslip.models.ensemble import build_ensemble
    >>> build_ensemble(["runs/a", "runs/b"], "runs/ab")             # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from landslip import __version__
from landslip.errors import BandError, InputError, ModelError
from landslip.io.checks import check_writable
from landslip.models.bundle import (
    META_FILE,
    Bundle,
    BundleMeta,
    find_bundle,
    load_bundle,
    save_bundle,
)
from landslip.models.export import ensure_onnx
from landslip.models.registry import check_input, create_model, register_model

__all__ = ["EPS", "EnsembleModel", "build_ensemble", "ensemble"]

logger = logging.getLogger(__name__)

EPS: Final = 1e-6
"""The mean probability is clamped to [EPS, 1 - EPS] before its logit is taken."""


class EnsembleModel(nn.Module):
    """The mean probability of several member models, returned as a logit.

    Args:
        in_channels: Number of input bands C (every member takes the same input).
        members: The member networks (logit models (N, C, H, W) -> (N, 1, H, W)).
        specs: Registry name and parameters of each member, ``{"model": ..., "params":
            {...}}``, recorded as the bundle's ``model_params``.

    Attributes:
        required_multiple: Least common multiple of the members' multiples.
        in_channels: Number of input bands.
        params: ``{"members": specs}`` (the registry parameters that rebuild it).

    Shapes:
        input (N, C, H, W) float32 -> logits (N, 1, H, W) float32, ``sigmoid(logits)`` = the
        members' mean probability (clamped to [EPS, 1 - EPS]).
    """

    def __init__(self, in_channels: int, members: Sequence[nn.Module],
                 specs: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.members = nn.ModuleList(members)
        self.required_multiple = math.lcm(*(int(getattr(m, "required_multiple", 1))
                                            for m in members))
        self.params: dict[str, Any] = {
            "members": [{"model": s["model"], "params": dict(s["params"])} for s in specs]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) float32 inputs to (N, 1, H, W) logits of the mean probability.

        Raises:
            ModelError: If the input is not 4-D, has the wrong number of bands, or H or W is not
                a multiple of :attr:`required_multiple` (the message says how to pad).
        """
        check_input(x, self.in_channels, self.required_multiple, "ensemble")
        total = torch.zeros((), dtype=torch.float32, device=x.device)
        for member in self.members:
            total = total + torch.sigmoid(member(x).float())
        p = (total / len(self.members)).clamp(EPS, 1.0 - EPS)
        return torch.log(p) - torch.log(1.0 - p)


@register_model("ensemble")
def ensemble(in_channels: int, members: Sequence[Mapping[str, Any]] = ()) -> EnsembleModel:
    """Mean probability of member models, each given as {"model": NAME, "params": {...}}."""
    if isinstance(members, str | bytes | Mapping) or not isinstance(members, Sequence) \
            or not members:
        raise ModelError("ensemble: members must be a non-empty list of {\"model\": NAME, "
                         "\"params\": {...}}; build one with `landslip ensemble`")
    nets, specs = [], []
    for i, spec in enumerate(members):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("model"), str) \
                or not isinstance(spec.get("params", {}), Mapping) \
                or set(spec) - {"model", "params"}:
            raise ModelError(f"ensemble: member {i} must be {{\"model\": NAME, \"params\": "
                             f"{{...}}}}, got {spec!r}")
        params = dict(spec.get("params", {}))
        nets.append(create_model(spec["model"], in_channels, **params))
        specs.append({"model": spec["model"], "params": params})
    return EnsembleModel(in_channels, nets, specs)


def _check_members(bundles: Sequence[Bundle]) -> None:
    """Refuse members that cannot share one input: one error naming the first difference.

    Raises:
        BandError: Members read different bands.
        ModelError: Members normalise differently or were trained on differently profiled data.
    """
    first = bundles[0]
    for b in bundles[1:]:
        a, m = first.meta, b.meta
        if list(m.band_names) != list(a.band_names):
            raise BandError(
                f"ensemble members must read the same bands: {first.path} uses band set "
                f"{a.band_set!r} ({', '.join(a.band_names)}), {b.path} uses {m.band_set!r} "
                f"({', '.join(m.band_names)}); combine models trained on the same band set")
        same = all(math.isclose(u, v, rel_tol=1e-6, abs_tol=1e-12)
                   for u, v in zip([*a.mean, *a.std], [*m.mean, *m.std], strict=True))
        if not same:
            raise ModelError(
                f"ensemble members must share the input normalisation (dataset statistics): "
                f"{first.path} has mean {_fmt(a.mean)} std {_fmt(a.std)}, {b.path} has mean "
                f"{_fmt(m.mean)} std {_fmt(m.std)}; combine models trained on the same dataset")
        if m.input_profile != a.input_profile:
            raise ModelError(
                f"ensemble members must share the training input profile: {first.path} and "
                f"{b.path} were trained on data with different band percentiles or dtype; "
                "combine models trained on the same dataset")


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def _common(values: Sequence[Any]) -> Any:
    """The value all members share, else None."""
    return values[0] if all(v == values[0] for v in values) else None


def _ensemble_meta(bundles: Sequence[Bundle], model: EnsembleModel) -> BundleMeta:
    """The ensemble's ``model.json``: the members' shared inputs, the mean threshold."""
    metas = [b.meta for b in bundles]
    first = metas[0]
    thresholds = [m.threshold for m in metas]
    members = [{"bundle": str(b.path), "model": m.model, "model_params": m.model_params,
                "threshold": m.threshold, "patch_size": m.patch_size,
                "dataset_fingerprint": m.dataset_fingerprint,
                "best_val": m.training.get("best_val")} for b, m in zip(bundles, metas,
                                                                         strict=True)]
    return BundleMeta(
        model="ensemble", model_params=model.params, in_channels=first.in_channels,
        band_set=first.band_set, band_names=list(first.band_names), mean=list(first.mean),
        std=list(first.std), threshold=sum(thresholds) / len(thresholds),
        patch_size=_common([m.patch_size for m in metas]),
        dataset_fingerprint=_common([m.dataset_fingerprint for m in metas]),
        landslip_version=__version__, input_profile=first.input_profile,
        training={"ensemble": {
            "members": members, "combination": "mean of the members' probabilities",
            "threshold": "mean of the members' thresholds",
            "parameters": sum(p.numel() for p in model.parameters())}},
    )


def build_ensemble(sources: Sequence[str | Path], output: str | Path) -> Bundle:
    """Write one bundle whose model averages the probabilities of the given bundles.

    Args:
        sources: Two or more run folders, bundle folders or ``model.json`` files.
        output: The new bundle folder (``model.json``, ``model.safetensors`` and, when the
            export succeeds, ``model.onnx``); it must not hold a bundle yet.

    Returns:
        The ensemble, loaded (model on the CPU, in eval mode).

    Raises:
        InputError: Fewer than two members, or ``output`` already holds a bundle.
        ModelError: A source holds no bundle, or the members normalise differently or were
            trained on differently profiled data.
        BandError: The members read different bands.
        OutputError: ``output`` cannot be written.
    """
    if len(sources) < 2:
        raise InputError(f"an ensemble needs at least 2 members, got {len(sources)}; list two "
                         "or more runs or bundles")
    out = check_writable(Path(output), folder=True)
    for existing in (out / META_FILE, out / "bundle" / META_FILE):
        if existing.is_file():
            raise InputError(f"{out} already holds a model bundle ({existing}); choose another "
                             "--output folder")
    folders = [find_bundle(s) for s in sources]
    twice = sorted({str(f) for f in folders if folders.count(f) > 1})
    if twice:
        raise InputError(f"ensemble member {twice[0]} is listed twice; list each run once")
    bundles = [load_bundle(f) for f in folders]
    _check_members(bundles)
    specs = [{"model": b.meta.model, "params": b.meta.model_params} for b in bundles]
    model = EnsembleModel(bundles[0].meta.in_channels, [b.model for b in bundles], specs).eval()
    meta = _ensemble_meta(bundles, model)
    path = save_bundle(out, model, meta)
    result = Bundle(model, meta, path)
    logger.info("ensemble of %d members written to %s (threshold %.4f)", len(bundles), path,
                meta.threshold)
    try:  # the ONNX engine loads BUNDLE/model.onnx instead of exporting on every predict
        ensure_onnx(result)
    except ModelError as exc:
        logger.warning("no model.onnx in the bundle (predict will export in memory): %s", exc)
    return result
