"""Vector I/O: read polygons from any OGR format, check the CRS, repair and reproject.

Landslide inventories come as GeoJSON (the GSI product, in lon/lat), GeoPackage or Shapefile.
:func:`read_polygons` reads them with geopandas through pyogrio, refuses files without a CRS
(unless one is given), empty files and non-polygon geometries, repairs invalid polygons with
``shapely.make_valid`` (keeping their polygonal parts) and reprojects to a target CRS.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landslip.errors import InputError, LabelError, VectorIOError
from landslip.grid import crs_name

__all__ = ["PolygonLayer", "read_polygons", "read_vector", "repair_polygons"]

log = logging.getLogger(__name__)

_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class PolygonLayer:
    """Polygons read from a vector file, valid and in one CRS.

    Attributes:
        frame: ``geopandas.GeoDataFrame`` of Polygon/MultiPolygon features (attributes kept).
        source_crs: The CRS the file was in (or was assumed to be in), as a ``pyproj.CRS``.
        n_read: Features read (after the attribute filter).
        n_empty: Features dropped because their geometry was null or empty.
        n_repaired: Invalid geometries repaired with ``make_valid``.
    """

    frame: Any
    source_crs: Any
    n_read: int
    n_empty: int
    n_repaired: int


def read_vector(
    path: str | Path,
    layer: str | int | None = None,
    where: str | None = None,
    assume_crs: Any = None,
) -> Any:
    """Read a vector file (any format OGR reads) into a GeoDataFrame with a CRS.

    Args:
        path: GeoJSON, GeoPackage, Shapefile, ... file.
        layer: Layer name or index for multi-layer formats (the first layer when None).
        where: Optional SQL WHERE clause on the attributes, such as ``"type = 'slide'"``.
        assume_crs: CRS (anything ``pyproj.CRS`` accepts, e.g. ``"EPSG:4326"``) to use when the
            file declares none; when the file declares another, the file's CRS is replaced (a
            warning is logged).

    Returns:
        ``geopandas.GeoDataFrame`` with its CRS set.

    Raises:
        VectorIOError: If the file is missing or unreadable.
        LabelError: If the file has no CRS and ``assume_crs`` is None.
        InputError: If the attribute filter is invalid.
    """
    import geopandas as gpd
    import pyogrio
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    p = Path(path)
    if not p.exists():
        raise VectorIOError(f"vector file not found: {p}")
    if p.is_file() and p.stat().st_size == 0:
        raise LabelError(f"{p} is an empty file; give a vector file with landslide polygons")
    try:
        frame = gpd.read_file(p, layer=layer, where=where, engine="pyogrio")
    except pyogrio.errors.DataSourceError as exc:
        raise VectorIOError(f"cannot read {p} as a vector file ({exc}); give GeoJSON, "
                            "GeoPackage, Shapefile or another format OGR reads") from exc
    except Exception as exc:  # pyogrio raises several error types, some plain GDAL ones
        if where and ("SQL" in str(exc) or isinstance(exc, pyogrio.errors.FieldError)):
            raise InputError(f"cannot apply the attribute filter {where!r} to {p}: {exc}; check "
                             "the field names and quote text values ('...')") from exc
        if isinstance(exc, pyogrio.errors.DataLayerError):
            raise VectorIOError(f"cannot read layer {layer!r} of {p}: {exc}") from exc
        raise VectorIOError(f"cannot read {p}: {exc}") from exc
    if assume_crs is not None:
        try:
            crs = CRS.from_user_input(assume_crs)
        except CRSError as exc:
            raise InputError(f"cannot understand the labels CRS {assume_crs!r}: {exc}; give "
                             "for example EPSG:4326") from exc
        if frame.crs is not None and not CRS.from_user_input(frame.crs).equals(crs):
            log.warning("%s declares CRS %s; using %s as requested", p, crs_name(frame.crs),
                        crs_name(crs))
        frame = frame.set_crs(crs, allow_override=True)
    elif frame.crs is None:
        raise LabelError(f"{p} has no coordinate reference system; add one (for a Shapefile, "
                         "the .prj file) or give it with --labels-crs, for example "
                         "--labels-crs EPSG:4326")
    return frame


def repair_polygons(frame: Any) -> tuple[Any, int, int]:
    """Drop empty geometries and repair invalid ones, keeping polygonal parts.

    Args:
        frame: GeoDataFrame of polygon features.

    Returns:
        (GeoDataFrame of valid Polygon/MultiPolygon features, number dropped as null or empty,
        number repaired).
    """
    import numpy as np
    import shapely

    geoms = np.asarray(frame.geometry.values, dtype=object)
    empty = np.array([g is None or g.is_empty for g in geoms], dtype=bool)
    frame = frame.loc[~empty].copy()
    geoms = np.asarray(frame.geometry.values, dtype=object)
    invalid = ~shapely.is_valid(geoms) if len(geoms) else np.zeros(0, dtype=bool)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        geoms[invalid] = [_polygonal_part(g) for g in fixed]
        frame = frame.set_geometry(list(geoms), crs=frame.crs)
        gone = np.array([g is None or g.is_empty for g in frame.geometry.values], dtype=bool)
        frame = frame.loc[~gone].copy()
    return frame, int(empty.sum()), int(invalid.sum())


def _polygonal_part(geom: Any) -> Any:
    import shapely

    if geom.geom_type in _POLYGONAL:
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in _POLYGONAL]
    if not parts:
        return None
    polys = [q for g in parts for q in shapely.get_parts(g)]
    return shapely.MultiPolygon(polys) if len(polys) > 1 else polys[0]


def read_polygons(
    path: str | Path,
    target_crs: Any = None,
    layer: str | int | None = None,
    where: str | None = None,
    assume_crs: Any = None,
) -> PolygonLayer:
    """Read landslide polygons: check CRS and geometry types, repair, reproject.

    Args:
        path: Vector file in any format OGR reads.
        target_crs: CRS to reproject to (e.g. the image's ``rasterio`` CRS); None keeps the
            file's CRS.
        layer: Layer name or index (first layer when None).
        where: Optional SQL WHERE clause on the attributes.
        assume_crs: CRS to use when the file declares none (see :func:`read_vector`).

    Returns:
        The :class:`PolygonLayer`.

    Raises:
        LabelError: Empty file, no features (after the filter), no CRS, or geometries other than
            polygons (the message counts the types found).
    """
    p = Path(path)
    frame = read_vector(p, layer=layer, where=where, assume_crs=assume_crs)
    n_read = len(frame)
    if n_read == 0:
        extra = f" matching {where!r}" if where else ""
        raise LabelError(f"{p} contains no features{extra}; give a file with landslide polygons")
    types = Counter(g.geom_type for g in frame.geometry.values if g is not None and not g.is_empty)
    other = {t: n for t, n in types.items() if t not in _POLYGONAL}
    if other:
        found = ", ".join(f"{n} {t}" for t, n in sorted(other.items()))
        raise LabelError(f"{p} holds non-polygon geometries ({found}); landslide labels must be "
                         "polygons (Polygon or MultiPolygon); buffer points or lines first")
    source_crs = frame.crs
    frame, n_empty, n_repaired = repair_polygons(frame)
    if n_empty:
        log.warning("%s: dropped %d feature(s) with empty or null geometry", p, n_empty)
    if n_repaired:
        log.warning("%s: repaired %d invalid polygon(s) with make_valid", p, n_repaired)
    if len(frame) == 0:
        raise LabelError(f"{p} has no non-empty polygon; give a file with landslide polygons")
    if target_crs is not None:
        try:
            frame = frame.to_crs(target_crs)
        except Exception as exc:
            raise LabelError(f"cannot reproject {p} from {crs_name(source_crs)} to "
                             f"{crs_name(target_crs)}: {exc}") from exc
    return PolygonLayer(frame=frame, source_crs=source_crs, n_read=n_read, n_empty=n_empty,
                        n_repaired=n_repaired)

