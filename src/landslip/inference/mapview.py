"""``map.html``: one self-contained page that shows a prediction to people without a GIS.

:func:`write_map` reads a prediction folder and writes one HTML file that works offline:
Leaflet (shipped inside the package, ``landslip/static/leaflet``) and its CSS and images are
inlined, the rasters are PNG ``data:`` URIs and the polygons GeoJSON, so nothing is fetched from
a network and the file can be mailed on its own. The page shows

* the input image as a quick-look (true colour when its red, green and blue bands are known)
  and the probability as image layers (:mod:`landslip.inference.quicklook`, at most
  :data:`~landslip.inference.quicklook.MAX_PX` pixels on the long side);
* the landslide polygons in EPSG:4326 with a popup each (id, area, mean probability, pixels),
  simplified (in the mask's CRS, topology kept) only when they hold more than
  :data:`MAX_VERTICES` vertices;
* a layer switcher, a scale bar, a legend and a summary panel (landslide count, total area,
  mapped share, threshold, model, input, scene).

The page is bounded in size: at most two 2048 px PNGs plus the (simplified) polygons.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from landslip import __version__
from landslip.errors import LandslipError
from landslip.grid import crs_name
from landslip.inference.folder import MAP_HTML, PredictionFolder, open_prediction
from landslip.inference.quicklook import (
    MAX_PX,
    PROBABILITY_RAMP,
    Overlay,
    image_overlay,
    probability_overlay,
)
from landslip.io.atomic import write_text_atomic
from landslip.io.cog import LANDSLIDE_RGB
from landslip.io.raster import raster_info

__all__ = ["MAX_VERTICES", "MapPolygons", "map_polygons", "rgb_bands", "write_map"]

log = logging.getLogger(__name__)

MAX_VERTICES = 200_000
"""Vertex budget of the polygons on the page; beyond it they are simplified."""
COORD_DECIMALS = 6
"""Decimals of longitude and latitude on the page (about 0.1 m)."""


@dataclass(frozen=True)
class MapPolygons:
    """Landslide polygons ready for the page.

    Attributes:
        geojson: FeatureCollection in EPSG:4326 (properties id, area_m2, mean_probability,
            pixels).
        count: Number of landslides.
        area_m2: Their total area, square metres.
        tolerance: Simplification tolerance used, in the mask CRS's units (0: none).
    """

    geojson: dict[str, Any]
    count: int
    area_m2: float
    tolerance: float


def _finite(v: Any) -> float | None:
    f = float(v)
    return f if np.isfinite(f) else None


def map_polygons(path: Path, pixel_size: float, max_vertices: int = MAX_VERTICES) -> MapPolygons:
    """Read ``landslides.gpkg`` and turn it into GeoJSON in EPSG:4326 for the page.

    Args:
        path: The GeoPackage.
        pixel_size: Pixel size of the mask in its CRS's units (first simplification tolerance,
            doubled until the vertex budget is met).
        max_vertices: Vertex budget.
    """
    import geopandas as gpd
    import shapely

    frame = gpd.read_file(path, engine="pyogrio")
    geoms = frame.geometry.values
    tolerance = 0.0
    while int(shapely.get_num_coordinates(geoms).sum()) > max_vertices:
        tolerance = pixel_size if tolerance == 0 else tolerance * 2
        geoms = shapely.simplify(frame.geometry.values, tolerance, preserve_topology=True)
    if tolerance:
        log.info("simplified %d polygons with a tolerance of %g for the map page",
                 len(frame), tolerance)
    series = gpd.GeoSeries(geoms, crs=frame.crs)
    ll = series.to_crs(4326).values if frame.crs is not None else series.values
    ll = shapely.set_coordinates(ll.copy(), np.round(shapely.get_coordinates(ll),
                                                     COORD_DECIMALS))
    features = [
        {"type": "Feature", "geometry": shapely.geometry.mapping(g),
         "properties": {"id": int(r.id), "area_m2": _finite(r.area_m2),
                        "mean_probability": _finite(r.mean_probability),
                        "pixels": int(r.pixels)}}
        for g, r in zip(ll, frame.itertuples(index=False), strict=True)
    ]
    area = float(np.nansum(frame["area_m2"].to_numpy(np.float64))) if len(frame) else 0.0
    return MapPolygons({"type": "FeatureCollection", "features": features}, len(frame), area,
                       tolerance)


def rgb_bands(pred: PredictionFolder) -> tuple[int, int, int] | None:
    """1-based (red, green, blue) bands of the prediction's input image, when known.

    Known from the bands the model read (``band_set`` and ``band_indexes`` of
    ``prediction.json``, which include names given with ``--band-names``), else from the
    image's band descriptions.
    """
    from landslip.spectral.bands import resolve_band_set

    names: dict[str, int] = {}
    try:
        required = resolve_band_set(str(pred.meta.get("band_set", ""))).required
        names.update(zip(required, (int(i) for i in pred.meta.get("band_indexes", [])),
                         strict=False))
    except LandslipError:
        pass
    if not {"red", "green", "blue"} <= names.keys() and pred.image.is_file():
        descriptions = raster_info(pred.image).descriptions
        names = {(d or "").strip().lower(): i for i, d in enumerate(descriptions, start=1)}
    if {"red", "green", "blue"} <= names.keys():
        return names["red"], names["green"], names["blue"]
    return None


def _area_text(m2: float) -> str:
    if m2 < 1e4:
        return f"{m2:,.0f} m²"
    return f"{m2 / 1e6:,.3f} km² ({m2 / 1e4:,.2f} ha)"


def _model_text(pred: PredictionFolder) -> tuple[str, str]:
    """(short model description, bundle path) for the summary."""
    from landslip.models.bundle import read_bundle_meta

    band_set = str(pred.meta.get("band_set", "?"))
    if pred.bundle is None:
        return f"bands {band_set}", ""
    try:
        meta = read_bundle_meta(pred.bundle)
    except LandslipError:
        return f"{pred.bundle.name} (bands {band_set})", str(pred.bundle)
    params = ", ".join(f"{k} {v}" for k, v in meta.model_params.items())
    return (f"{meta.model}{f' ({params})' if params else ''}, bands {meta.band_set}",
            str(pred.bundle))


def _summary(pred: PredictionFolder, polys: MapPolygons | None) -> list[list[str]]:
    """Rows [label, value, tooltip] of the summary panel."""
    m = pred.meta
    info = raster_info(pred.probability)
    model, bundle = _model_text(pred)
    valid = int(m.get("valid_pixels", 0))
    share = 100.0 * int(m.get("landslide_pixels", 0)) / valid if valid else 0.0
    made = datetime.fromtimestamp(pred.report.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")
    rows = [
        ["Landslides", str(polys.count) if polys is not None else "not traced", ""],
        ["Total area", _area_text(polys.area_m2) if polys is not None else "n/a", ""],
        ["Mapped share", f"{share:.2f} % of {valid:,} valid pixels", ""],
        ["Threshold", f"probability ≥ {pred.threshold:g}", ""],
        ["Model", model, bundle],
        ["Input", pred.image.name, str(pred.image)],
        ["Scene", f"{info.grid.height} x {info.grid.width} px of "
                  f"{abs(info.grid.transform.a):g} {_pixel_unit(info.grid.crs)}, "
                  f"{crs_name(info.grid.crs)}", ""],
        ["Made", f"{made} UTC, landslip {m.get('landslip_version', '?')}", ""],
    ]
    if polys is not None and polys.tolerance:
        rows.append(["Note", f"outlines simplified by {polys.tolerance:g} map units", ""])
    return rows


def _leaflet() -> tuple[str, str]:
    """(leaflet.css with its images inlined, leaflet.js without its source-map comment)."""
    base = resources.files("landslip") / "static" / "leaflet"
    css = (base / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = (base / "images" / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

    css = re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css)
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)
    return css, js


def _data_uri(overlay: Overlay) -> str:
    return "data:image/png;base64," + base64.b64encode(overlay.png).decode("ascii")


def _page(data: dict[str, Any]) -> str:
    """Fill the template (``landslip/static/map.html``) with Leaflet and the page's data."""
    template = (resources.files("landslip") / "static" / "map.html").read_text(encoding="utf-8")
    css, js = _leaflet()
    stops = len(PROBABILITY_RAMP) - 1
    ramp = ", ".join(f"rgb{c} {100 * i // stops}%" for i, c in enumerate(PROBABILITY_RAMP))
    doc = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    r, g, b = LANDSLIDE_RGB
    fills = {
        "@@VERSION@@": html.escape(__version__), "@@TITLE@@": html.escape(data["title"]),
        "@@RAMP@@": ramp, "@@COLOR@@": data["color"], "@@FILL@@": f"rgba({r}, {g}, {b}, 0.25)",
        "@@LEAFLET_CSS@@": css, "@@DATA@@": doc,
    }
    fills["@@LEAFLET_JS@@"] = js.replace("</script", "<\\/script")
    return re.sub(r"@@[A-Z_]+@@", lambda m: fills[m.group(0)], template)


def write_map(prediction: str | Path, output: str | Path | None = None, *,
              max_px: int = MAX_PX, max_vertices: int = MAX_VERTICES) -> Path:
    """Write the self-contained map page of a prediction folder.

    Args:
        prediction: The prediction folder (or its ``prediction.json``).
        output: The HTML file; default ``map.html`` in the prediction folder.
        max_px: Largest side of the image and probability quick-looks, pixels.
        max_vertices: Vertex budget of the polygons before simplification.

    Returns:
        The path of the page (written atomically).

    Raises:
        InputError: When the folder is not a prediction or its rasters have no CRS.
    """
    pred = open_prediction(prediction)
    out = Path(output) if output is not None else pred.path / MAP_HTML
    prob = probability_overlay(pred.probability, max_px)
    image: dict[str, Any] | None = None
    if pred.image.is_file():
        rgb = rgb_bands(pred)
        look = image_overlay(pred.image, rgb, max_px)
        image = {"url": _data_uri(look), "bounds": look.bounds,
                 "name": "Image (true colour)" if rgb else "Image (band 1)"}
    else:
        log.warning("the input image %s is not there any more; the map has no image layer",
                    pred.image)
    polys = None
    if pred.polygons is not None:
        pixel = abs(raster_info(pred.mask).grid.transform.a)
        polys = map_polygons(pred.polygons, pixel, max_vertices)
    data = {
        "version": __version__, "title": f"Landslides in {pred.image.name}",
        "color": "#{:02x}{:02x}{:02x}".format(*LANDSLIDE_RGB), "threshold": pred.threshold,
        "bounds": prob.bounds, "image": image,
        "probability": {"url": _data_uri(prob), "bounds": prob.bounds},
        "polygons": polys.geojson if polys is not None else None,
        "canvas": polys is not None and polys.count > 2000,
        "summary": _summary(pred, polys),
    }
    write_text_atomic(out, _page(data))
    log.debug("wrote %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def _pixel_unit(crs: Any) -> str:
    """The unit of a pixel size in ``crs``: "m" (or the CRS's linear unit), "deg", "units"."""
    if crs is None:
        return "units"
    if crs.is_geographic:
        return "deg"
    unit = str(getattr(crs, "linear_units", "") or "").lower()
    return "m" if unit in ("metre", "meter", "m", "") else unit
