"""Atomic file output: write to a temporary name beside the target, rename when complete.

An interrupted run never leaves a file that looks finished: the temporary file carries a
``.partial-PID`` suffix and is removed when the writer fails or is interrupted (Ctrl-C). A run
killed outright (``kill -9``, a power cut) cannot clean up; the next write of the same target
removes the partial files of processes that no longer run (:func:`remove_stale_partials`).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "remove_stale_partials", "write_json_atomic", "write_text_atomic"]

_PARTIAL = re.compile(r"\.partial-(\d+)")


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (or exists under another user)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def remove_stale_partials(target: str | Path) -> int:
    """Remove the temporary files or folders of ``target`` left by processes that are gone.

    They are named ``.STEM.partial-PID...`` beside ``target`` (:func:`atomic_path`, the dataset
    writer); those whose process still runs are kept.

    Returns:
        The number of leftovers removed.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return 0
    removed = 0
    for stem in {target.stem, target.name}:
        for leftover in target.parent.glob(f".{glob.escape(stem)}.partial-*"):
            m = _PARTIAL.match(leftover.name[len(stem) + 1:])
            if m is None or _alive(int(m.group(1))):
                continue
            try:
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
                removed += 1
            except FileNotFoundError:  # another process removed it first
                continue
    return removed


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` on success.

    The parent folder is created when missing, and partial files of ``target`` left by killed
    processes are removed. On any exception (Ctrl-C included) the temporary file is removed and
    ``target`` is left as it was.

    Args:
        target: Final path of the file.

    Yields:
        The temporary path to write to (same folder, same suffix, so drivers chosen by
        extension still work).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    tmp = target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        for leftover in tmp.parent.glob(tmp.name + "*"):
            leftover.unlink(missing_ok=True)
        raise


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``target`` atomically and return the path."""
    return write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")
