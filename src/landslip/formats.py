"""Reading landslip's versioned JSON documents: one check of ``format`` and ``version``.

Every JSON file landslip writes for another command to read (``dataset.json``, ``model.json``,
``report.json``, ``prediction.json``, ``scene.json``) starts with ``format`` (a name such as
``"landslip-dataset"``) and ``version`` (an integer that grows when the layout changes in a way
an older reader cannot follow). Readers call :func:`read_document` or :func:`check_format`,
which refuse another format, a missing or malformed version, and a version newer than this
landslip reads, with one message naming the file and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from landslip import __version__
from landslip.errors import InputError

__all__ = ["check_format", "read_document"]


def check_format(
    doc: Any,
    *,
    expected: str,
    supported: int,
    source: str | Path,
    error: type[InputError] = InputError,
) -> dict[str, Any]:
    """Check that a decoded JSON document has the expected format and a readable version.

    Args:
        doc: The decoded JSON value.
        expected: The expected ``format`` value, e.g. ``"landslip-dataset"``.
        supported: The newest ``version`` this landslip reads; versions 1..supported pass.
        source: File (or description) named in error messages.
        error: The :class:`~landslip.errors.InputError` subclass to raise.

    Returns:
        The document as a dict.

    Raises:
        InputError: (or ``error``) for another format, a bad or newer version.
    """
    if not isinstance(doc, Mapping):
        raise error(f"{source} is not a {expected} document (a JSON object was expected, "
                    f"found {type(doc).__name__})")
    found = doc.get("format")
    if found != expected:
        raise error(f"{source} is not a {expected} document (format is {found!r}, "
                    f"expected {expected!r})")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise error(f"{source} has no valid format version (found {version!r}, expected an "
                    f"integer 1..{supported}); the file is damaged: write it again")
    if version > supported:
        raise error(f"{source} has {expected} version {version}, newer than landslip "
                    f"{__version__} reads ({supported}); upgrade landslip")
    return dict(doc)


def read_document(
    path: str | Path,
    *,
    expected: str,
    supported: int,
    error: type[InputError] = InputError,
) -> dict[str, Any]:
    """Read a landslip JSON document and check its format and version.

    Args:
        path: The JSON file.
        expected: The expected ``format`` value.
        supported: The newest ``version`` this landslip reads.
        error: The :class:`~landslip.errors.InputError` subclass to raise.

    Returns:
        The document as a dict.

    Raises:
        InputError: (or ``error``) when the file cannot be read or parsed, or fails
            :func:`check_format`.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{p} not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"cannot read {p}: {exc}") from exc
    return check_format(doc, expected=expected, supported=supported, source=p, error=error)
