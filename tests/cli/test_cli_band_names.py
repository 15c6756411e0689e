"""``--band-names`` means the same in every verb: parsed once, empty or repeated names refused."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from landslip.cli.app import app
from landslip.errors import InputError

# verb -> (arguments before --band-names, module and function the verb hands the names to)
VERBS: dict[str, tuple[list[str], str, str]] = {
    "prepare": (["prepare", "{d}/image.tif", "{d}/labels.tif", "-o", "{d}/ds"],
                "landslip.dataset.prepare", "prepare_dataset"),
    "import-patches": (["import-patches", "{d}/patches", "-o", "{d}/ds"],
                       "landslip.dataset.imports", "import_patches"),
    "predict": (["predict", "{d}/run", "{d}/image.tif", "-o", "{d}/out"],
                "landslip.inference.predict", "predict_scene"),
}


@pytest.fixture
def calls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace the verb's library function by one that records its band names and stops."""
    _, module_name, func_name = VERBS[request.node.callspec.params["verb"]]
    recorded: list[Any] = []

    def fake(*args: Any, **kwargs: Any) -> None:
        recorded.append(kwargs["band_names"])
        raise InputError("stopped by the test")

    monkeypatch.setattr(importlib.import_module(module_name), func_name, fake)
    return recorded


def _run(verb: str, band_names: str, tmp_path: Path) -> Any:
    args = [a.format(d=tmp_path) for a in VERBS[verb][0]]
    return CliRunner().invoke(app, ["-q", *args, "--band-names", band_names])


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_band_names_are_stripped_and_lower_cased(
    verb: str, calls: list[Any], tmp_path: Path
) -> None:
    result = _run(verb, " Blue,green , RED,nir", tmp_path)
    assert result.exit_code == 2
    assert "stopped by the test" in result.stderr
    assert list(calls[0]) == ["blue", "green", "red", "nir"]


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize(
    ("band_names", "message"),
    [
        # A trailing comma gave an empty name in predict and was dropped silently in prepare
        # and import-patches.
        ("blue,green,red,nir,", "empty item (5 of 5)"),
        (",blue,green,red", "empty item (1 of 4)"),
        ("blue,,red", "empty item (2 of 3)"),
        ("", "--band-names is empty"),
        ("blue,green,Blue", "blue named twice"),
    ],
)
def test_bad_band_names_exit_2_with_one_line(
    verb: str, band_names: str, message: str, calls: list[Any], tmp_path: Path
) -> None:
    result = _run(verb, band_names, tmp_path)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("Error: --band-names") and message in err
    assert len(err.splitlines()) == 1
    assert calls == []  # refused before the library function runs
