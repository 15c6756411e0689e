"""What an exported landslip ONNX model says about itself, read without torch.

:mod:`landslip.models.export` writes the bundle's ``model.json`` into the ONNX file's
``metadata_props`` (one key per field, JSON values; the keys are listed there). This module
reads them back (:func:`read_onnx_metadata`, :func:`parse_onnx_metadata`) and finds a bundle's
own export (:func:`matching_onnx`: ``<bundle>/model.onnx`` with the sha256 of the bundle's
weights), so that the ONNX Runtime engine needs neither torch nor the weights.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landslip import __version__
from landslip.errors import ModelError
from landslip.formats import check_format
from landslip.models.bundle import WEIGHTS_FILE, Bundle, BundleMeta

__all__ = [
    "INPUT_NAME",
    "ONNX_CACHE_FILE",
    "ONNX_FORMAT",
    "ONNX_VERSION",
    "OUTPUT_NAME",
    "OnnxMetadata",
    "import_onnx",
    "matching_onnx",
    "parse_onnx_metadata",
    "read_onnx_metadata",
    "require_package",
    "weights_sha256",
]

logger = logging.getLogger(__name__)

ONNX_FORMAT = "landslip-onnx"
"""``format`` metadata value of an exported landslip model."""

ONNX_VERSION = 1
"""Version of the metadata layout (grows when a reader could not follow a change)."""

INPUT_NAME = "input"
"""Name of the graph input: float32 (N, C, H, W), normalised."""

OUTPUT_NAME = "probability"
"""Name of the graph output: float32 (N, 1, H, W) probabilities."""

ONNX_CACHE_FILE = "model.onnx"
"""A bundle's own export (``landslip export BUNDLE``, :func:`ensure_onnx`), reused by the onnx
engine while its weights checksum matches."""


@dataclass(frozen=True)
class OnnxMetadata:
    """What an exported file says about itself (:func:`read_onnx_metadata`).

    Attributes:
        bundle: The bundle's ``model.json`` (band set, band names, mean, std, threshold, ...).
        required_multiple: Input height and width must be multiples of this.
        input_name: Graph input name (float32 (N, C, H, W), normalised).
        output_name: Graph output name (float32 (N, 1, H, W) probabilities).
        weights_sha256: sha256 of the bundle's ``model.safetensors`` (None if not recorded).
        exported_by: landslip version that wrote the file.
        version: Metadata layout version.
    """

    bundle: BundleMeta
    required_multiple: int
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    weights_sha256: str | None = None
    exported_by: str = __version__
    version: int = ONNX_VERSION



def weights_sha256(bundle: Bundle) -> str | None:
    """sha256 of the bundle's ``model.safetensors``, or None when the file is absent."""
    from landslip.dataset.checksums import sha256_file

    path = bundle.path / WEIGHTS_FILE
    return sha256_file(path) if path.is_file() else None



def parse_onnx_metadata(props: Mapping[str, str], source: str | Path) -> OnnxMetadata:
    """Decode ``metadata_props`` written by :func:`onnx_metadata_props`.

    Args:
        props: Key to JSON string (``onnx.ModelProto.metadata_props`` as a dict, or ONNX
            Runtime's ``get_modelmeta().custom_metadata_map``).
        source: File named in error messages.

    Returns:
        The decoded metadata.

    Raises:
        ModelError: If the file was not exported by landslip, is of a newer layout, or a value
            is not JSON or is inconsistent.
    """
    try:
        doc = {k: json.loads(v) for k, v in props.items()}
    except json.JSONDecodeError as exc:
        raise ModelError(f"{source}: ONNX metadata value is not JSON ({exc}); export the "
                         "model again with `landslip export`") from exc
    if "format" not in doc:
        raise ModelError(f"{source} is an ONNX file without landslip metadata; export the "
                         "model with `landslip export BUNDLE -o FILE.onnx`")
    doc = check_format(doc, expected=ONNX_FORMAT, supported=ONNX_VERSION, source=source,
                       error=ModelError)
    version = int(doc.pop("version"))
    doc.pop("format")
    extra = {k: doc.pop(k, None) for k in ("required_multiple", "input", "output",
                                           "probability_encoding", "weights_sha256",
                                           "exported_by")}
    meta = BundleMeta.from_json({"format": "landslip-bundle", "version": 1, **doc}, str(source))
    multiple = extra["required_multiple"]
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ModelError(f"{source}: bad required_multiple {multiple!r} in the ONNX metadata")
    io_names = [(extra[k] or {}).get("name") if isinstance(extra[k], dict) else None
                for k in ("input", "output")]
    return OnnxMetadata(
        bundle=meta, required_multiple=multiple,
        input_name=str(io_names[0] or INPUT_NAME), output_name=str(io_names[1] or OUTPUT_NAME),
        weights_sha256=extra["weights_sha256"], exported_by=str(extra["exported_by"]),
        version=version,
    )



def read_onnx_metadata(source: str | Path | bytes) -> OnnxMetadata:
    """Read the landslip metadata of an exported ONNX model.

    Args:
        source: Path of the ``.onnx`` file, or its bytes.

    Returns:
        The decoded metadata (the bundle's ``model.json`` as :class:`BundleMeta`, the required
        multiple, input/output names, weights checksum, exporting version).

    Raises:
        ModelError: If the file is missing, not ONNX, or lacks landslip metadata.
    """
    onnx = import_onnx()
    from google.protobuf.message import DecodeError

    name = "ONNX bytes" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise ModelError(f"ONNX model {source} not found")
    try:
        if isinstance(source, bytes):
            proto = onnx.load_model_from_string(source)
        else:
            proto = onnx.load(str(source), load_external_data=False)
    except OSError as exc:
        raise ModelError(f"cannot read ONNX model {name}: {exc}") from exc
    except DecodeError as exc:
        raise ModelError(f"{name} is not an ONNX model ({exc})") from exc
    return parse_onnx_metadata({p.key: p.value for p in proto.metadata_props}, name)



def matching_onnx(bundle: Bundle) -> Path | None:
    """``<bundle folder>/model.onnx`` when it was exported from this bundle, else None.

    It matches when its metadata holds the sha256 of the bundle's ``model.safetensors`` and
    the same ``model.json``; a stale or unreadable file is ignored (logged).
    """
    sha = weights_sha256(bundle)
    cached = bundle.path / ONNX_CACHE_FILE
    if sha is None or not cached.is_file():
        return None
    try:
        meta = read_onnx_metadata(cached)
    except ModelError as exc:
        logger.warning("ignoring %s: %s", cached, exc)
        return None
    if meta.weights_sha256 == sha and meta.bundle == bundle.meta:
        return cached
    logger.info("ignoring %s: exported from other weights", cached)
    return None



def require_package(name: str, advice: str) -> Any:
    """Import an optional package, or raise a one-line :class:`ModelError` saying what to do.

    Args:
        name: Module to import (``onnx``, ``onnxscript``, ``onnxruntime``).
        advice: What to do instead, appended to the message.
    """
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ModelError(f"the {name} package is not installed; install it "
                         f"(`pip install {name}`) {advice}") from exc



def import_onnx() -> Any:
    """The onnx package, or a one-line :class:`ModelError` saying how to install it."""
    return require_package("onnx", "to export or read ONNX models")
