"""``landslip info``: describe a landslip artefact in a few lines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["info"]


def info(
    path: Annotated[
        Path,
        typer.Argument(help="Dataset, run, bundle, prediction, evaluation or scene folder, an "
                            ".onnx model, or a GeoTIFF."),
    ],
) -> None:
    """Describe a dataset, run, bundle, prediction or GeoTIFF (metadata only, instant)."""
    from landslip.info import describe

    for line in describe(path):
        typer.echo(line)
