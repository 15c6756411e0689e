"""A finished prediction folder, read back: what ``landslip predict`` wrote and from what.

The map page (:mod:`landslip.inference.mapview`), the STAC Item (:mod:`landslip.inference.stac`)
and ``landslip info`` read a prediction through :func:`open_prediction`, which checks the
``format`` and ``version`` of ``prediction.json`` (:func:`landslip.formats.read_document`) and
that the rasters are there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landslip.errors import InputError
from landslip.formats import read_document

__all__ = [
    "GEOJSON",
    "MAP_HTML",
    "MASK",
    "POLYGONS",
    "PREDICTION_FORMAT",
    "PREDICTION_JSON",
    "PREDICTION_VERSION",
    "PROBABILITY",
    "STAC_ITEM",
    "PredictionFolder",
    "open_prediction",
]

PREDICTION_FORMAT = "landslip-prediction"
PREDICTION_VERSION = 1
PROBABILITY = "probability.tif"
MASK = "landslides.tif"
POLYGONS = "landslides.gpkg"
GEOJSON = "landslides.geojson"
PREDICTION_JSON = "prediction.json"
MAP_HTML = "map.html"
STAC_ITEM = "stac-item.json"


@dataclass(frozen=True)
class PredictionFolder:
    """The files of a prediction folder and its ``prediction.json``.

    Attributes:
        path: The folder.
        meta: ``prediction.json`` as a dict (image, threshold, counts, band_set, bundle...).
    """

    path: Path
    meta: dict[str, Any]

    @property
    def probability(self) -> Path:
        """``probability.tif``."""
        return self.path / PROBABILITY

    @property
    def mask(self) -> Path:
        """``landslides.tif``."""
        return self.path / MASK

    @property
    def polygons(self) -> Path | None:
        """``landslides.gpkg``, None when polygons were not traced."""
        p = self.path / POLYGONS
        return p if p.is_file() else None

    @property
    def geojson(self) -> Path | None:
        """``landslides.geojson``, None when not written."""
        p = self.path / GEOJSON
        return p if p.is_file() else None

    @property
    def report(self) -> Path:
        """``prediction.json``."""
        return self.path / PREDICTION_JSON

    @property
    def image(self) -> Path:
        """The input image, as recorded (it may have moved since)."""
        return Path(str(self.meta.get("image", "")))

    @property
    def bundle(self) -> Path | None:
        """The model bundle folder, as recorded; None when the prediction had no bundle."""
        b = self.meta.get("bundle")
        return Path(str(b)) if b else None

    @property
    def threshold(self) -> float:
        """The probability threshold of the mask."""
        return float(self.meta.get("threshold", float("nan")))


def open_prediction(path: str | Path) -> PredictionFolder:
    """Read a prediction folder (or its ``prediction.json``).

    Raises:
        InputError: When ``prediction.json`` is missing, of another format or newer, or a
            raster of the prediction is missing.
    """
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if not (folder / PREDICTION_JSON).is_file():
        raise InputError(f"{p} is not a prediction folder: no {PREDICTION_JSON} there (make one "
                         "with `landslip predict`)")
    meta = read_document(folder / PREDICTION_JSON, expected=PREDICTION_FORMAT,
                         supported=PREDICTION_VERSION)
    pred = PredictionFolder(folder, meta)
    missing = [f.name for f in (pred.probability, pred.mask) if not f.is_file()]
    if missing:
        raise InputError(f"the prediction folder {folder} lacks {', '.join(missing)}; run "
                         "`landslip predict` again")
    return pred
