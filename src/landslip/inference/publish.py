"""What a prediction folder gets after its rasters and polygons: the STAC Item, the map page.

``landslip predict`` calls :func:`publish_prediction` once its outputs are written (with
``html=True`` for ``--html``); ``landslip report`` calls it on an existing folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from landslip.inference.mapview import write_map
from landslip.inference.stac import write_stac_item

__all__ = ["Published", "publish_prediction"]


@dataclass(frozen=True)
class Published:
    """The files :func:`publish_prediction` wrote.

    Attributes:
        stac_item: ``stac-item.json``.
        map_html: ``map.html``, or None when not asked for.
    """

    stac_item: Path
    map_html: Path | None


def publish_prediction(prediction: str | Path, html: bool = False) -> Published:
    """Write the map page (when ``html``) and then the STAC Item (which lists the page).

    Args:
        prediction: A prediction folder (or its ``prediction.json``).
        html: Also write ``map.html``.

    Returns:
        The :class:`Published` paths.
    """
    page = write_map(prediction) if html else None
    return Published(stac_item=write_stac_item(prediction), map_html=page)
