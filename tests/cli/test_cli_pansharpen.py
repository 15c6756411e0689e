"""``landslip pansharpen --weights``: a comma list of numbers, with no empty item."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from landslip.cli.app import app


@pytest.mark.parametrize("weights", ["0.3,0.3,0.3,", ",0.3,0.3,0.3", "0.3,,0.3", "a,b"])
def test_bad_weights_exit_2_with_one_line(weights: str, tmp_path: Path) -> None:
    # A trailing comma used to be dropped silently.
    result = CliRunner().invoke(app, [
        "-q", "pansharpen", str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif"),
        "-o", str(tmp_path / "out.tif"), "--method", "brovey", "--weights", weights,
    ])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("Error: --weights must be a comma list of numbers")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out.tif").exists()
