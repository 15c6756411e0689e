"""``landslip train`` options: one source (TrainConfig) for their defaults and help texts."""

from __future__ import annotations

import inspect

import pytest
import typer

from landslip.cli.app import main
from landslip.cli.train import train
from landslip.training.config import TrainConfig

_NOT_FIELDS = {"config"}  # --config is the YAML file itself
_FLAGS = {"resume"}  # a flag: absent means False


def _command() -> typer.core.TyperCommand:
    app = typer.Typer(add_completion=False)
    app.command()(train)
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperCommand)
    return command


def test_every_option_is_a_trainconfig_field_without_its_own_default() -> None:
    params = inspect.signature(train).parameters
    assert set(params) - _NOT_FIELDS <= set(TrainConfig.model_fields)
    for name, p in params.items():
        if name not in _FLAGS:
            # None = not given: the YAML file or TrainConfig's default decides.
            assert p.default is None, name


def test_help_texts_and_defaults_come_from_trainconfig() -> None:
    for param in _command().params:
        name = param.name or ""
        if name in _NOT_FIELDS:
            continue
        field = TrainConfig.model_fields[name]
        text = getattr(param, "help", None) or ""
        assert field.description and text.startswith(field.description), name
        default = None if field.is_required() else field.default
        if default is not None and not isinstance(default, bool):
            assert f"(default: {default})" in text, name


def test_rendered_help_shows_the_defaults(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # Square brackets would be taken for rich markup and vanish from the rendered help.
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    fields = TrainConfig.model_fields
    for name in ("epochs", "batch_size", "lr", "bands", "model", "loss"):
        assert f"(default: {fields[name].default})" in out, name
