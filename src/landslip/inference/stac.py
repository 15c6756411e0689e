"""A STAC Item per prediction (``stac-item.json``), so catalogue tools can index the outputs.

STAC 1.0.0 Item with the projection extension v1.1.0 (``proj:epsg``, ``proj:wkt2``,
``proj:shape``, ``proj:transform``, ``proj:bbox`` of the prediction grid); ``geometry`` is the
grid's footprint in EPSG:4326 (its edges densified, then reprojected) and ``bbox`` its extent;
without a CRS both are null/absent, as the specification allows for data without a location.

Assets (hrefs relative to the item, so the folder can be moved or served as it is):
``probability`` and ``mask`` (Cloud-Optimized GeoTIFFs), ``polygons`` (GeoPackage),
``geojson`` and ``map`` (``map.html``) when they exist, and ``metadata`` (``prediction.json``).
Links with ``rel: derived_from`` point at the input image and the model bundle's
``model.json`` (absolute paths, as recorded by ``landslip predict``). ``datetime`` is the image's
acquisition time when its ``TIFFTAG_DATETIME`` holds one, else the time the prediction was
made; ``landslip:*`` properties hold the threshold and the counts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from landslip import __version__
from landslip.inference.folder import (
    GEOJSON,
    MAP_HTML,
    MASK,
    POLYGONS,
    PREDICTION_JSON,
    PROBABILITY,
    STAC_ITEM,
    PredictionFolder,
    open_prediction,
)
from landslip.io.atomic import write_json_atomic
from landslip.io.raster import RasterInfo, open_raster, raster_info

__all__ = ["PROJECTION_EXTENSION", "STAC_VERSION", "stac_item", "write_stac_item"]

log = logging.getLogger(__name__)

STAC_VERSION = "1.0.0"
PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def _footprint(info: RasterInfo) -> tuple[dict[str, Any] | None, list[float] | None]:
    """(GeoJSON polygon of the grid footprint in EPSG:4326, its bbox), None without a CRS."""
    import shapely
    from rasterio.warp import transform_geom

    if info.grid.crs is None:
        return None, None
    left, bottom, right, top = info.grid.bounds
    box = shapely.box(left, bottom, right, top)  # 20 segments a side: curved edges stay close
    dense = shapely.segmentize(box, max(right - left, top - bottom) / 20)
    geom = transform_geom(info.grid.crs, "EPSG:4326", shapely.geometry.mapping(dense),
                          antimeridian_cutting=True, precision=7)
    shape = shapely.geometry.shape(geom)
    return dict(shapely.geometry.mapping(shape)), [round(v, 7) for v in shape.bounds]


def _projection(info: RasterInfo) -> dict[str, Any]:
    """The ``proj:*`` properties of the prediction grid."""
    import pyproj

    g = info.grid
    t = g.transform
    props: dict[str, Any] = {
        "proj:epsg": None,
        "proj:shape": [g.height, g.width],
        "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f, 0.0, 0.0, 1.0],
        "proj:bbox": list(g.bounds),
    }
    if g.crs is not None:
        crs = pyproj.CRS.from_user_input(g.crs.to_wkt())
        props["proj:epsg"] = crs.to_epsg()
        props["proj:wkt2"] = crs.to_wkt(pyproj.enums.WktVersion.WKT2_2019)
    return props


def _datetime(pred: PredictionFolder) -> str:
    """The image's TIFFTAG_DATETIME as RFC 3339 (UTC assumed), else the prediction's time."""
    if pred.image.is_file():
        with open_raster(pred.image) as ds:
            stamp = ds.tags().get("TIFFTAG_DATETIME")
        try:
            if stamp:
                when = datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
                return when.isoformat().replace("+00:00", "Z")
        except ValueError:
            log.debug("ignoring TIFFTAG_DATETIME %r of %s", stamp, pred.image)
    made = datetime.fromtimestamp(pred.report.stat().st_mtime, UTC)
    return made.isoformat(timespec="seconds").replace("+00:00", "Z")


def _assets(pred: PredictionFolder) -> dict[str, dict[str, Any]]:
    """The item's assets: the files of the prediction folder that exist."""
    folder = pred.path
    table = [
        ("probability", PROBABILITY, COG_TYPE, "landslide probability (uint8: p = code / 254, "
         "255 nodata; or float 0-1, NaN nodata)", ["data"]),
        ("mask", MASK, COG_TYPE, f"landslide mask at probability >= {pred.threshold:g} "
         "(0 none, 1 landslide, 255 nodata)", ["data"]),
        ("polygons", POLYGONS, "application/geopackage+sqlite3",
         "landslide polygons (layer landslides: id, area_m2, pixels, mean_probability)",
         ["data"]),
        ("geojson", GEOJSON, "application/geo+json", "landslide polygons in EPSG:4326",
         ["data"]),
        ("map", MAP_HTML, "text/html", "self-contained map page (works offline)",
         ["overview"]),
        ("metadata", PREDICTION_JSON, "application/json",
         "what was run: bundle, image, window plan, threshold, counts", ["metadata"]),
    ]
    return {key: {"href": f"./{name}", "type": kind, "title": title, "roles": roles}
            for key, name, kind, title, roles in table if (folder / name).is_file()}


def _links(pred: PredictionFolder) -> list[dict[str, Any]]:
    links = [{"rel": "derived_from", "href": str(pred.image.resolve()),
              "type": "image/tiff; application=geotiff", "title": "input image"}]
    if pred.bundle is not None:
        links.append({"rel": "derived_from", "href": str((pred.bundle / "model.json").resolve()),
                      "type": "application/json", "title": "model bundle (model.json)"})
    return links


def stac_item(prediction: str | Path) -> dict[str, Any]:
    """The STAC Item of a prediction folder, as a JSON-ready dict (see the module docstring)."""
    pred = open_prediction(prediction)
    info = raster_info(pred.probability)
    geometry, bbox = _footprint(info)
    m = pred.meta
    properties: dict[str, Any] = {
        "datetime": _datetime(pred),
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "title": f"Landslides in {pred.image.name}",
        **_projection(info),
        "landslip:threshold": pred.threshold,
        "landslip:band_set": m.get("band_set"),
        "landslip:polygons": m.get("polygons"),
        "landslip:landslide_pixels": m.get("landslide_pixels"),
        "landslip:valid_pixels": m.get("valid_pixels"),
        "landslip:version": m.get("landslip_version", __version__),
    }
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [PROJECTION_EXTENSION],
        "id": f"{pred.image.stem}-{pred.path.resolve().name}",
        "geometry": geometry,
    }
    if bbox is not None:
        item["bbox"] = bbox
    item.update(properties=properties, links=_links(pred), assets=_assets(pred))
    return item


def write_stac_item(prediction: str | Path) -> Path:
    """Write ``stac-item.json`` into the prediction folder (atomically) and return its path."""
    pred = open_prediction(prediction)
    return write_json_atomic(pred.path / STAC_ITEM, stac_item(pred.path))
