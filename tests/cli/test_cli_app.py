"""The CLI frame: version, help, verbosity, error handling and exit codes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from landslip import __version__
from landslip.cli import app as app_module
from landslip.cli.app import COMMANDS, main
from landslip.errors import InputError


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"landslip {__version__}"


# The verbs landslip must offer: a verb lost from the registry (or from --help) fails here.
EXPECTED_VERBS = {
    "synth", "pansharpen", "pansharpen-assess", "rasterize", "prepare", "import-patches",
    "train", "evaluate", "study", "predict", "export", "ensemble", "report", "info", "demo",
}


def _listed(verb: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(verb)}(?![\w-])", text) is not None


def test_help_lists_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    lost = EXPECTED_VERBS - set(COMMANDS)
    assert not lost, f"verbs lost from the registry: {sorted(lost)}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--verbose" in out and "--quiet" in out
    missing = [verb for verb in COMMANDS if not _listed(verb, out)]
    assert not missing, f"verbs missing from landslip --help: {missing}"
    # Each verb's own help works too (its module imports and its options parse).
    for verb in sorted(EXPECTED_VERBS):
        assert main([verb, "--help"]) == 0, verb
        assert "Usage" in capsys.readouterr().out


def test_verb_modules_load_only_when_listed_or_run() -> None:
    code = (
        "import sys; import landslip.cli.app as a; "
        "mods = {t.split(':')[0] for t in a.COMMANDS.values()}; "
        "print(sorted(m for m in mods if m in sys.modules)); "
        "a.main(['rasterize', '--help']); "
        "print(sorted(m for m in mods if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[-1] == "['landslip.cli.rasterize']"


def test_unknown_verb_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-verb"]) == 2


def test_every_registered_verb_imports() -> None:
    import importlib

    for verb, target in COMMANDS.items():
        module_name, func = target.split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, func)), verb


def test_landslip_error_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import types

    def boom() -> None:
        """Fail on purpose."""
        raise InputError("the thing is wrong; do this instead")

    mod = types.ModuleType("landslip_test_boom")
    mod.boom = boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "landslip_test_boom", mod)
    monkeypatch.setitem(COMMANDS, "boom", "landslip_test_boom:boom")
    assert main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "Error: the thing is wrong; do this instead"
    assert "Traceback" not in err
    assert main(["-v", "boom"]) == 2
    assert "Traceback" in capsys.readouterr().err
    app_module._state["verbose"] = False


def test_console_script_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "landslip.cli", "--version"], capture_output=True, text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert __version__ in proc.stdout

