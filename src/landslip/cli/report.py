"""``landslip report``: the map page and STAC Item of an existing prediction folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["report"]


def report(
    prediction: Annotated[
        Path, typer.Argument(help="Prediction folder (written by landslip predict).")
    ],
) -> None:
    """Write map.html (a self-contained map page that works offline) and stac-item.json."""
    from landslip.inference.publish import publish_prediction

    r = publish_prediction(prediction, html=True)
    for path in (r.map_html, r.stac_item):
        if path is not None:
            typer.echo(f"Wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
