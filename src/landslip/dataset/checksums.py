"""Checksums of a dataset folder's files and the fingerprint that identifies its content.

The fingerprint is the sha256 of the checksums of :data:`DATA_FILES` together with the
metadata that changes what the arrays mean (format, version, bands, dtype, nodata, patch size,
split method); models record it, so an evaluation can tell whether a model was trained on the
dataset it scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DATA_FILES", "data_checksums", "fingerprint", "sha256_file"]

DATA_FILES: tuple[str, ...] = ("index.csv", "images.npy", "labels.npy")
"""Files of a dataset folder covered by checksums, besides dataset.json."""


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in blocks of ``block`` bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def data_checksums(folder: str | Path) -> dict[str, str]:
    """{file name: hex sha256} of the :data:`DATA_FILES` in ``folder``."""
    return {name: sha256_file(Path(folder) / name) for name in DATA_FILES}


def fingerprint(checksums: Mapping[str, str], meta: Mapping[str, Any]) -> str:
    """Hex sha256 over the file checksums and the content-defining entries of dataset.json."""
    core = {k: meta.get(k) for k in ("format", "version", "bands", "dtype", "nodata",
                                     "patch_size")}
    core["split"] = meta.get("split", {}).get("method")
    text = json.dumps({"checksums": dict(checksums), "meta": core}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
