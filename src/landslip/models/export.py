"""Export a model bundle to ONNX: one self-describing file that ONNX Runtime (or any tool) runs.

The graph (``torch.onnx.export``, opset 20: the TorchScript exporter, 10x faster, or the
torch.export-based one where that fails; either is checked against PyTorch) maps

* ``input``: float32 ``(N, C, H, W)``, already normalised (``(band - mean) / std``, 0 at nodata,
  exactly :meth:`landslip.models.bundle.Bundle.inputs`), N, H and W dynamic, H and W multiples of
  the model's ``required_multiple``;
* to ``probability``: float32 ``(N, 1, H, W)`` = ``sigmoid(logits)`` in [0, 1].

The sigmoid is part of the graph (the models themselves return logits): every consumer of an
exported file wants probabilities (the decision rule is ``p >= threshold`` on the float32
probability, :func:`landslip.encoding.apply_threshold`), ONNX Runtime fuses the sigmoid for
free, and a file whose output is already the documented quantity cannot be misread.

The bundle's ``model.json`` travels inside the file as ONNX ``metadata_props``, one key per
field with a JSON value (``"format": "\\"landslip-onnx\\""``, ``"version": "1"``, ``"model"``,
``"model_params"``, ``"in_channels"``, ``"band_set"``, ``"band_names"``, ``"mean"``, ``"std"``,
``"threshold"``, ``"patch_size"``, ``"dataset_fingerprint"``, ``"landslip_version"``,
``"training"``) plus ``"required_multiple"``, ``"input"`` / ``"output"`` (name, shape, dtype,
meaning), ``"probability_encoding"``, ``"weights_sha256"`` (of ``model.safetensors``) and
``"exported_by"``. :func:`landslip.models.onnx_meta.read_onnx_metadata` reads it back into an
:class:`~landslip.models.onnx_meta.OnnxMetadata`
holding the :class:`~landslip.models.bundle.BundleMeta`.

Example:
    >>> from landslip.models.export import export_onnx
    >>> from landslip.models.onnx_meta import read_onnx_metadata
    >>> export_onnx("runs/r1", "model.onnx")                      # doctest: +SKIP
    >>> read_onnx_metadata("model.onnx").bundle.band_set          # doctest: +SKIP
    'bgrn'
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from landslip import __version__
from landslip.encoding import PROBABILITY_NODATA, PROBABILITY_SCALE
from landslip.errors import InputError, ModelError
from landslip.io.atomic import atomic_path
from landslip.models.bundle import Bundle, load_bundle
from landslip.models.onnx_meta import (
    INPUT_NAME,
    ONNX_CACHE_FILE,
    ONNX_FORMAT,
    ONNX_VERSION,
    OUTPUT_NAME,
    OnnxMetadata,
    import_onnx,
    matching_onnx,
    read_onnx_metadata,
    require_package,
    weights_sha256,
)

if TYPE_CHECKING:
    import onnx

__all__ = [
    "MAX_CHECK_DIFFERENCE",
    "ONNX_OPSET",
    "OnnxExport",
    "ProbabilityModel",
    "ensure_onnx",
    "export_onnx",
    "export_onnx_bytes",
    "onnx_metadata_props",
]

logger = logging.getLogger(__name__)

ONNX_OPSET = 20
"""ONNX opset of exported graphs (ONNX Runtime >= 1.17 runs it)."""
MAX_CHECK_DIFFERENCE = 1e-4
"""Largest |p_onnx - p_torch| :func:`export_onnx` accepts when checking an export."""


class ProbabilityModel(nn.Module):
    """Wrap a logit model so that it returns probabilities: ``sigmoid(model(x))``.

    Shapes:
        input (N, C, H, W) float32 -> (N, 1, H, W) float32 in [0, 1].
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of ``x`` (see the class docstring)."""
        return torch.sigmoid(self.model(x))




@dataclass(frozen=True)
class OnnxExport:
    """Result of :func:`export_onnx`.

    Attributes:
        path: The written file.
        bytes: Its size in bytes.
        opset: ONNX opset of the graph.
        max_difference: Largest |p_onnx - p_torch| of the check, or None when not checked.
        seconds: Wall time of the export (and check).
        metadata: What the file says about itself.
        exporter: ``torchscript`` or ``dynamo`` (the torch.export-based exporter).
    """

    path: Path
    bytes: int
    opset: int
    max_difference: float | None
    seconds: float
    metadata: OnnxMetadata
    exporter: str = "torchscript"




def onnx_metadata_props(bundle: Bundle, sha256: str | None = None) -> dict[str, str]:
    """The ONNX ``metadata_props`` of an export of ``bundle``: keys to JSON-encoded values.

    Args:
        bundle: The loaded bundle.
        sha256: sha256 of its weights file (see :func:`weights_sha256`), or None.

    Returns:
        ``{key: json.dumps(value)}`` (see the module docstring for the keys).
    """
    meta = bundle.meta.to_json()
    multiple = bundle.required_multiple
    c = bundle.meta.in_channels
    values: dict[str, Any] = {
        "format": ONNX_FORMAT,
        "version": ONNX_VERSION,
        **{k: v for k, v in meta.items() if k not in ("format", "version")},
        "required_multiple": multiple,
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": ["N", c, "H", "W"],
                  "meaning": f"(band - mean) / std of band_names, 0 at nodata; H and W "
                             f"multiples of {multiple}"},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["N", 1, "H", "W"],
                   "meaning": "landslide probability sigmoid(logit) in [0, 1]; landslide "
                              "where probability >= threshold"},
        "probability_encoding": {"graph_output": "probability", "uint8_scale": PROBABILITY_SCALE,
                                 "uint8_nodata": PROBABILITY_NODATA,
                                 "uint8_rule": "round(p * 254), 255 = nodata"},
        "weights_sha256": sha256,
        "exported_by": __version__,
    }
    return {k: json.dumps(v) for k, v in values.items()}






def export_onnx_bytes(bundle: Bundle, sha256: str | None = None, check: bool = True) -> bytes:
    """Export a loaded bundle to a serialised ONNX model, in memory.

    Args:
        bundle: The loaded bundle (its model on any device; it is exported from a CPU copy
            only if it is not already on the CPU).
        sha256: Checksum of the weights to record (default: computed from the bundle folder).
        check: Compare ONNX Runtime with PyTorch on one random input (needs onnxruntime);
            an export that disagrees is replaced by the other exporter's, or refused.

    Returns:
        The ONNX model (``ModelProto`` bytes) with the metadata described in the module
        docstring; graph input float32 (N, C, H, W), output probabilities (N, 1, H, W).

    Raises:
        ModelError: If ``onnx`` is missing, both exporters fail, or the check fails.
    """
    return _export(bundle, sha256, check)[0]


def export_onnx(
    bundle: Bundle | str | Path, output: str | Path, check: bool = True
) -> OnnxExport:
    """Export a bundle to an ONNX file (written atomically).

    Args:
        bundle: A loaded :class:`Bundle`, or a run folder, bundle folder or ``model.json``.
        output: The ``.onnx`` file to write (replaced if it exists; parents created).
        check: Run ONNX Runtime and PyTorch on one random input and refuse the export when
            their probabilities differ by more than ``1e-4`` (needs ``onnxruntime``).

    Returns:
        Where and what was written.

    Raises:
        ModelError: For a missing or bad bundle, missing exporter packages, a failing export
            or check.
        InputError: If ``output`` is a folder.
    """
    t0 = time.perf_counter()
    out = Path(output)
    if out.is_dir():
        raise InputError(f"output {out} is a folder; give a file name such as "
                         f"{out / 'model.onnx'}")
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    data, diff, exporter = _export(b, None, check)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    meta = read_onnx_metadata(data)
    logger.debug("exported %s to %s (%.1f MB, %s exporter) in %.1f s", b.path, out,
                 len(data) / 1e6, exporter, time.perf_counter() - t0)
    return OnnxExport(path=out, bytes=len(data), opset=ONNX_OPSET, max_difference=diff,
                      seconds=time.perf_counter() - t0, metadata=meta, exporter=exporter)




def ensure_onnx(bundle: Bundle | str | Path) -> Path:
    """Write ``<bundle folder>/model.onnx`` unless a matching export is already there.

    Meant for the end of training: the bundle then carries its ONNX model, which the onnx
    prediction engine (:meth:`landslip.models.engine.OnnxEngine.from_bundle`) loads instead
    of exporting in memory on every ``predict``/``evaluate``.

    Args:
        bundle: A loaded :class:`Bundle`, or a run folder, bundle folder or ``model.json``.

    Returns:
        Path of the bundle's ``model.onnx``.

    Raises:
        ModelError: If the export or its check fails, or onnx/onnxruntime are missing.
    """
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    cached = matching_onnx(b)
    return cached if cached is not None else export_onnx(b, b.path / ONNX_CACHE_FILE).path






@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (torchvision-missing notes, optimiser passes, warnings)."""
    logs = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


def _export(bundle: Bundle, sha256: str | None, check: bool) -> tuple[bytes, float | None, str]:
    """(ONNX bytes with metadata, check difference or None, exporter name).

    The TorchScript exporter first (about 0.4 s for a width-16 U-Net on 2 cores, the same
    graph as the torch.export-based exporter, which takes 5-9 s); the torch.export-based
    exporter when the TorchScript one fails, is missing (a later torch) or fails the check.
    """
    import_onnx()
    if check:
        require_package("onnxruntime", "to check the export, or skip the check")
    model = bundle.model
    param = next(model.parameters(), None)
    if param is not None and param.device.type != "cpu":
        import copy

        model = copy.deepcopy(model).to("cpu")
    wrapper = ProbabilityModel(model).eval()
    m = bundle.required_multiple
    example = torch.zeros((2, bundle.meta.in_channels, 2 * m, 2 * m), dtype=torch.float32)
    props = onnx_metadata_props(bundle, sha256 if sha256 is not None else weights_sha256(bundle))
    errors: list[str] = []
    for name, exporter in (("torchscript", _export_torchscript), ("dynamo", _export_dynamo)):
        try:
            proto = exporter(wrapper, example, m)
        except Exception as exc:  # the exporters raise many types; try the next one
            text = str(exc).splitlines()[0] if str(exc).strip() else repr(exc)
            errors.append(f"{name} exporter: {text}")
            logger.debug("ONNX export failed: %s", errors[-1])
            continue
        del proto.metadata_props[:]
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        data: bytes = proto.SerializeToString()
        if not check:
            return data, None, name
        try:
            return data, _check_against_torch(bundle, data), name
        except ModelError as exc:
            errors.append(f"{name} exporter: {exc}")
    raise ModelError(f"cannot export model {bundle.meta.model!r} {bundle.meta.model_params} "
                     f"to ONNX ({'; '.join(errors)})".replace("\n", " "))


def _export_torchscript(wrapper: nn.Module, example: torch.Tensor, m: int) -> onnx.ModelProto:
    """Trace-based export (``dynamo=False``) with dynamic N, H and W (``m`` unused)."""
    import io

    import onnx

    axes = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    with _quiet_exporter(), torch.inference_mode(False), torch.no_grad():
        # torch deprecates this exporter (a DeprecationWarning, silenced here); it still ships
        # in torch 2.13 and is 10x faster than the torch.export-based one, which is the fallback.
        torch.onnx.export(  # the TorchScript exporter writes to file objects too
            wrapper, (example,), buf,  # type: ignore[arg-type]
            dynamo=False, opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes}, verbose=False,
        )
    proto: onnx.ModelProto = onnx.load_model_from_string(buf.getvalue())
    return proto


def _export_dynamo(wrapper: nn.Module, example: torch.Tensor, m: int) -> onnx.ModelProto:
    """torch.export-based export (``dynamo=True``, needs onnxscript); H and W multiples of m."""
    require_package("onnxscript", "(torch's ONNX exporter needs it)")
    from torch.export import Dim

    dims = {"x": {0: Dim("batch", min=1), 2: m * Dim("height_blocks", min=1),
                  3: m * Dim("width_blocks", min=1)}}
    with _quiet_exporter(), torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(
            wrapper, (example,), dynamo=True, opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=dims, verbose=False, report=False, external_data=False,
        )
    if program is None:  # pragma: no cover - only the TorchScript exporter returns None
        raise ModelError("torch.onnx.export returned no program")
    return program.model_proto


def _check_against_torch(bundle: Bundle, data: bytes) -> float:
    """Largest |p_onnx - p_torch| on one random (1, C, s, 2s) input, s = 2m and at least 64.

    The shape differs from the (2, C, 2m, 2m) example the graph was traced with, so a size or
    batch baked into the graph is caught.
    """
    ort = require_package("onnxruntime", "to check the export, or skip the check")
    m = bundle.required_multiple
    side = max(2 * m, -(-64 // m) * m)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, bundle.meta.in_channels, side, 2 * side)).astype(np.float32)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    p_onnx = np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], dtype=np.float32)
    param = next(bundle.model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.inference_mode():
        p_torch = torch.sigmoid(bundle.model(torch.from_numpy(x).to(device))).cpu().numpy()
    diff = float(np.max(np.abs(p_onnx - p_torch)))
    if not diff <= MAX_CHECK_DIFFERENCE:
        raise ModelError(f"the ONNX export of {bundle.path} disagrees with PyTorch (max "
                         f"probability difference {diff:.2g} > {MAX_CHECK_DIFFERENCE:g}); "
                         "report this with the bundle's model.json")
    return diff
