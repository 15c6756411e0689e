"""Training configuration: paper defaults, YAML + options precedence, unknown keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from landslip.errors import ConfigError
from landslip.training.config import (
    TrainConfig,
    load_config,
    load_yaml_config,
    resolve_config,
    save_config,
)


def test_paper_defaults_and_descriptions() -> None:
    c = TrainConfig(dataset=Path("d"), output=Path("o"))
    assert (c.model, c.loss, c.optimizer, c.lr, c.epochs, c.batch_size) == (
        "unet-paper", "dice", "adam", 0.001, 100, 40)
    assert c.model_name_and_params() == ("unet-paper", {})
    missing = [n for n, f in TrainConfig.model_fields.items() if not f.description]
    assert missing == []
    assert (c.precision, c.memory_format, c.compile) == ("32", "channels_last", "auto")


@pytest.mark.parametrize("given", [32, "32", "32-true"])
def test_precision_32_spellings(given: object) -> None:
    # YAML "precision: 32" is a number; configs saved before "32" was canonical say 32-true.
    assert load_config(None, dataset="d", output="o", precision=given).precision == "32"
    with pytest.raises(ConfigError, match="precision: Input should be '32', '16-mixed' or "):
        load_config(None, dataset="d", output="o", precision="64")


def test_width_switches_paper_model_to_unet() -> None:
    c = TrainConfig(dataset=Path("d"), output=Path("o"), width=16)
    assert c.model_name_and_params() == ("unet", {"width": 16})


def test_yaml_then_options_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: ds\noutput: run\nepochs: 7\nbatch-size: 8\nlr: 0.01\n")
    c = load_config(cfg, epochs=3, lr=None)
    assert (c.epochs, c.batch_size, c.lr) == (3, 8, 0.01)
    save_config(c, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == c


def test_unknown_key_and_bad_values(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: ds\noutput: run\nepoch: 7\n")
    with pytest.raises(ConfigError, match=r"^\S*c\.yaml: epoch: unknown key\. Valid keys: dataset"):
        load_config(cfg)
    with pytest.raises(ConfigError, match=r"^options: lr: Input should be greater than 0$"):
        load_config(None, dataset="d", output="o", lr=-1)
    # A bad value from the file and one from an explicit option: each names its source.
    cfg.write_text("dataset: ds\noutput: run\nepochs: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, lr=-1)
    assert str(err.value) == ("options: lr: Input should be greater than 0; "
                              f"{cfg}: epochs: Input should be greater than or equal to 1")
    cfg.write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: expected a mapping of options"):
        load_config(cfg)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: ds\nepochs: 3\nlr: [0.1\nseed: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    msg = str(err.value)
    assert msg.startswith(f"{cfg}:4:5: ") and "\n" not in msg, msg
    assert "not valid YAML" in msg
    cfg.write_text("dataset: ds\n  bands: bgr\n")
    with pytest.raises(ConfigError, match=rf"^{cfg}:2:8: mapping values are not allowed"):
        load_config(cfg)


class _Small(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(1, ge=1)
    name: str = "x"


def test_load_yaml_config_is_generic(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("size: 3\n")
    assert load_yaml_config(f, _Small) == _Small(size=3)
    assert load_yaml_config(f, _Small, {"size": None, "name": "y"}) == _Small(size=3, name="y")
    f.write_text("")  # an empty file is an empty mapping
    assert load_yaml_config(f, _Small) == _Small()
    f.write_text("sise: 3\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: sise: unknown key\. Valid keys: size, name$"):
        load_yaml_config(f, _Small)


def test_resume_takes_the_saved_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_config(TrainConfig(dataset=Path("ds"), output=run, epochs=5, bands="bg-ndvi"),
                run / "config.yaml")
    c = resolve_config(None, resume=True, output=run, epochs=9, dataset=None)
    assert (c.bands, c.epochs, c.resume, c.dataset) == ("bg-ndvi", 9, True, Path("ds"))
