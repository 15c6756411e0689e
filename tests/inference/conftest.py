"""Fixtures of the inference tests: a finished prediction folder (one per test module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.predictions import write_prediction


@pytest.fixture(scope="module")
def prediction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``write_prediction`` without a map page: the folder ``pred`` of a fresh temporary one."""
    folder = tmp_path_factory.mktemp("prediction")
    write_prediction(folder, html=False)
    return folder / "pred"
