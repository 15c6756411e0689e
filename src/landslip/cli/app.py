"""The ``landslip`` command: global options, verb registration and error handling.

Every verb lives in its own module of this package as a plain function with typer
annotations; it parses, calls one library function and reports. Heavy imports stay inside
the function bodies so that ``landslip --help`` is fast. Any :class:`LandslipError`, and any
OS error such as an output folder that cannot be written, becomes one line on stderr and exit
code 2; Ctrl-C says how to resume and exits with 130 (the traceback only with ``-v``; the rules
are in :mod:`landslip.cli.errors`).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from landslip import __version__
from landslip.cli.errors import EXIT_INTERRUPTED, describe, report

__all__ = ["COMMANDS", "app", "main", "run"]

# (verb, "module:function") for every verb, imported only when listed or run; keep heavy imports
# inside the functions so that ``landslip --help`` stays fast.
COMMANDS: dict[str, str] = {
    "synth": "landslip.cli.synth:synth",
    "pansharpen": "landslip.cli.pansharpen:pansharpen",
    "pansharpen-assess": "landslip.cli.pansharpen:pansharpen_assess",
    "rasterize": "landslip.cli.rasterize:rasterize",
    "prepare": "landslip.cli.prepare:prepare",
    "import-patches": "landslip.cli.import_patches:import_patches",
    "train": "landslip.cli.train:train",
    "evaluate": "landslip.cli.evaluate:evaluate",
    "study": "landslip.cli.study:study",
    "predict": "landslip.cli.predict:predict",
    "export": "landslip.cli.export:export",
    "ensemble": "landslip.cli.ensemble:ensemble",
    "report": "landslip.cli.report:report",
    "info": "landslip.cli.info:info",
    "demo": "landslip.cli.demo:demo",
}


def _load_command(verb: str) -> TyperCommand | None:
    """Build the command of one verb of :data:`COMMANDS`, importing its module now.

    Returns:
        The command, or None for an unknown verb or a verb whose module is absent.
    """
    target = COMMANDS.get(verb)
    if target is None:
        return None
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    sub = typer.Typer(add_completion=False)
    sub.command(name=verb)(getattr(module, func_name))
    command = typer.main.get_command(sub)
    if not isinstance(command, TyperCommand):  # a one-command Typer gives its command
        raise TypeError(f"verb {verb!r} did not build a single command")
    command.name = verb
    return command


class _LazyGroup(TyperGroup):
    """The root group: verbs from :data:`COMMANDS`, imported only when listed or run.

    Typer has no public lazy loading; its documented extension point is a ``TyperGroup``
    subclass passed as ``cls``. The methods below override click's ``list_commands``,
    ``get_command`` and ``invoke``, whose ``ctx`` parameter is click's ``Context``, which
    typer >= 0.26 defines in its private ``typer._click`` package (older typer uses click
    itself). ``typer.Context`` is a subclass, too narrow for an override under mypy --strict,
    so ``ctx`` is typed ``Any`` here, the only place that needs it; everything imported is
    public, and the same code runs on typer 0.20 to 0.29 (tests/cli).
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return [v for v in COMMANDS if self.get_command(ctx, v) is not None]

    def get_command(self, ctx: Any, cmd_name: str) -> TyperCommand | None:
        return _load_command(cmd_name)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (Exception, KeyboardInterrupt) as exc:
            if describe(exc) is None:
                raise
            raise typer.Exit(report(exc, _state["verbose"])) from None


app = typer.Typer(
    name="landslip",
    cls=_LazyGroup,
    help="Map landslides from optical satellite imagery with a U-Net.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"landslip {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging and full tracebacks.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors; no progress bars.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Map landslides from optical satellite imagery with a U-Net."""
    from rich.logging import RichHandler

    from landslip.progress import set_enabled

    _state["verbose"] = verbose
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(show_path=verbose, show_time=verbose, rich_tracebacks=False)
    root = logging.getLogger("landslip")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    set_enabled(not quiet)
    if not verbose:
        # Lightning's start-up chatter (accelerator availability, tips) is noise in a CLI.
        for name in (
            "lightning.pytorch.utilities.rank_zero",
            "lightning.fabric.utilities.rank_zero",
        ):
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 unexpected failure, 2 bad input, 130
    interrupted). The Ctrl-C handler is as before when it returns."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        app(args=argv, prog_name="landslip")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
    return 0


def run() -> None:
    """Console-script entry point: exit with :func:`main`'s code.

    After Ctrl-C the process leaves at once with 130 (output flushed, everything already
    closed and cleaned up by the verb): CPython may otherwise still turn a KeyboardInterrupt
    that landslip handled into death by SIGINT at interpreter shutdown when the interrupt
    landed inside a nested ``PyRun`` call of an extension.
    """
    code = main()
    if code == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
