"""How the CLI reports a failed or interrupted run: one line on stderr and an exit code.

* :class:`~landslip.errors.LandslipError`: ``Error: <message>``, exit 2.
* An :class:`OSError` from writing (a read-only folder, a missing permission, a full disk):
  ``Error: cannot write PATH: reason; choose a writable folder``, exit 2. The path named is the
  output, not its hidden temporary twin (``.NAME.partial-PID``). Other OS errors: one line,
  exit 2. GDAL errors that escape (``CPLE_*``): one line, exit 2.
* Ctrl-C (:class:`KeyboardInterrupt`): ``interrupted; rerun the same command to resume`` (or
  the verb's own hint, carried by :class:`~landslip.errors.Interrupted`), exit 130.

The full traceback is printed only with ``-v``. Anything else is a bug: traceback, exit 1.
"""

from __future__ import annotations

import contextlib
import errno
import re
import signal
import traceback
from pathlib import Path

import typer

from landslip.errors import Interrupted, LandslipError

__all__ = ["EXIT_INPUT", "EXIT_INTERRUPTED", "INTERRUPTED", "describe", "report"]

EXIT_INPUT = 2
"""Exit code of a run refused or stopped for bad input or an unusable output location."""

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""

INTERRUPTED = "interrupted; rerun the same command to resume"
"""The message after Ctrl-C when the verb gives no hint of its own."""

_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                 errno.EFBIG, errno.ENOTDIR, errno.EISDIR}
_PARTIAL = re.compile(r"^\.(?P<stem>.+?)\.partial-\d+(?P<suffix>.*)$")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _output_name(filename: object) -> str:
    """The output a (possibly temporary) file name stands for."""
    p = Path(str(filename))
    m = _PARTIAL.match(p.name)
    if m is None:
        return str(p)
    return str(p.with_name(m.group("stem") + m.group("suffix")))


def _gdal_error() -> tuple[type[BaseException], ...]:
    try:
        from rasterio._err import CPLE_BaseError
    except ImportError:  # pragma: no cover - rasterio is a dependency
        return ()
    return (CPLE_BaseError,)


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an exception, or None for a bug.

    Args:
        exc: What ended the run.

    Returns:
        (message, exit code), or None when the exception is unexpected (exit 1 with a
        traceback).
    """
    if isinstance(exc, LandslipError):
        return f"Error: {_one_line(str(exc))}", EXIT_INPUT
    if isinstance(exc, KeyboardInterrupt):
        hint = str(exc) if isinstance(exc, Interrupted) and str(exc) else INTERRUPTED
        return _one_line(hint), EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        reason = _one_line(exc.strerror or str(exc) or type(exc).__name__)
        if exc.errno in _WRITE_ERRNOS and exc.filename is not None:
            return (f"Error: cannot write {_output_name(exc.filename)}: {reason}; choose a "
                    "writable folder"), EXIT_INPUT
        where = f"{_output_name(exc.filename)}: " if exc.filename is not None else ""
        return f"Error: {where}{reason}", EXIT_INPUT
    if isinstance(exc, _gdal_error()):
        return f"Error: GDAL: {_one_line(str(exc))}", EXIT_INPUT
    return None


def _ignore_further_interrupts() -> None:
    """Ignore Ctrl-C from now on (and one already pending): the run is over, it only exits."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def report(exc: BaseException, verbose: bool) -> int:
    """Print the one-line report of ``exc`` (and its traceback with ``-v``); the exit code.

    Raises:
        BaseException: ``exc`` itself when it is a bug (:func:`describe` gives None), so the
            interpreter prints the traceback and exits with 1.
    """
    described = describe(exc)
    if described is None:
        raise exc
    if isinstance(exc, KeyboardInterrupt):
        _ignore_further_interrupts()
    if verbose:
        traceback.print_exception(exc)
    message, code = described
    typer.echo(message, err=True)
    return code
