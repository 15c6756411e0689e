"""Landslide polygons from the final mask GeoTIFF, read row band by row band.

A polygon is one landslide under the connectivity rule of the whole package
(:data:`landslip.encoding.CONNECTIVITY` = 8: pixels touching at an edge or a corner belong to
the same landslide), so the number of features equals the number of objects ``landslip
evaluate`` counts on the same mask.

The mask is never held whole: bands of ``band_rows`` rows are read, their landslide pixels
labelled into 8-connected components (:func:`scipy.ndimage.label` with
:data:`~landslip.encoding.STRUCTURE_8`) and traced into polygons
(:func:`rasterio.features.shapes` with ``connectivity=8``) in *pixel* coordinates, where every
vertex is an integer and pieces of one landslide cut by a band boundary share their edge (or
corner) exactly. GDAL traces two pixels that touch only at a corner as one self-touching ring;
such a piece is split at the corner (:func:`shapely.make_valid`), so a landslide whose parts
meet only at corners is one MultiPolygon feature. Components that touch across a band
boundary, at an edge or diagonally, are joined (:class:`scipy.cluster.hierarchy.DisjointSet`)
and their pieces merged (:func:`shapely.union_all`), so a landslide crossing any window or
band border comes out as one feature. Only then are polygons moved to map coordinates with the
grid's affine transform. Memory: one band of labels (``band_rows * width * 4`` bytes) plus the
polygons.

Attributes per feature: ``id`` (1..n, top to bottom), ``area_m2`` (square metres: pixel area
in a projected CRS, geodesic area on the ellipsoid in a geographic one), ``pixels`` and
``mean_probability`` (mean of the probability raster over the polygon's pixels, decoded with
:func:`landslip.encoding.decode_probability` when the raster is uint8).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.encoding import CONNECTIVITY, LANDSLIDE, STRUCTURE_8, decode_probability
from landslip.errors import VectorIOError
from landslip.grid import Grid, Window
from landslip.io.atomic import atomic_path
from landslip.io.raster import open_raster, raster_info

__all__ = ["MaskTracer", "Polygons", "polygonize_mask", "write_polygons"]

log = logging.getLogger(__name__)

GPKG_VERSION = "1.2"
"""GeoPackage version written: read without warnings by GDAL >= 2.2, QGIS and ArcGIS."""


@dataclass
class Polygons:
    """Landslide polygons in the mask's CRS.

    Attributes:
        grid: The mask's grid.
        frame: ``geopandas.GeoDataFrame`` with columns id, area_m2, pixels, mean_probability,
            geometry (Polygon or MultiPolygon), in the grid's CRS.
        dropped: Polygons removed by the minimum-area filter.
        dropped_pixels: Their pixels, when they were also removed from the mask
            (:func:`landslip.inference.min_area.drop_small_landslides`).
    """

    grid: Grid
    frame: Any
    dropped: int = 0
    dropped_pixels: int = 0


def _read_probability(pds: Any, window: Window) -> npt.NDArray[np.float32]:
    """Probabilities of a window of a probability raster: uint8 codes decoded, float as is."""
    data = pds.read(1, window=window.to_rasterio())
    if data.dtype == np.uint8:
        return decode_probability(data)
    return np.asarray(data, dtype=np.float32)


def _area_factor(grid: Grid) -> tuple[float | None, Any]:
    """(square metres per pixel for projected CRSs or None, pyproj.Geod for geographic)."""
    import pyproj

    pixel_area = abs(grid.transform.a * grid.transform.e)
    if grid.crs is None:
        log.warning("the mask has no CRS; area_m2 is in square pixel units")
        return pixel_area, None
    crs = pyproj.CRS.from_user_input(grid.crs.to_wkt())
    if crs.is_geographic:
        return None, pyproj.Geod(ellps="WGS84") if crs.ellipsoid is None else crs.get_geod()
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return pixel_area * unit * unit, None


def _touching_pairs(
    above: npt.NDArray[np.int64], below: npt.NDArray[np.int64]
) -> set[tuple[int, int]]:
    """Component pairs that touch across a row boundary, at an edge or a corner.

    Args:
        above: (W,) int64 component ids of the last row above the boundary, 0 = none.
        below: (W,) int64 component ids of the first row below it, 0 = none.

    Returns:
        The set of (above id, below id) pairs of 8-neighbours.
    """
    w = above.size
    pairs: set[tuple[int, int]] = set()
    for shift in (-1, 0, 1):  # below column = above column + shift
        a = above[max(0, -shift):w - max(0, shift)]
        b = below[max(0, shift):w - max(0, -shift)]
        both = (a > 0) & (b > 0)
        pairs.update(zip(a[both].tolist(), b[both].tolist(), strict=True))
    return pairs


def _disjoint_set() -> Any:
    from scipy.cluster.hierarchy import DisjointSet

    return DisjointSet()


@dataclass
class _Components:
    """The 8-connected components of all bands so far, joined across band boundaries.

    Component ``g`` (0-based, in order of discovery) has traced ``pieces[g]`` (shapely
    geometries in pixel coordinates), ``counts[g]`` pixels, probability sum ``sums[g]`` and
    first row ``first_row[g]``; ``groups`` (a ``DisjointSet``) joins the components of one
    landslide.
    """

    groups: Any = field(default_factory=_disjoint_set)
    pieces: list[list[Any]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    sums: list[float] = field(default_factory=list)
    first_row: list[int] = field(default_factory=list)
    prev_bottom: npt.NDArray[np.int64] | None = None

    def add_band(self, r0: int, mask: npt.NDArray[np.bool_],
                 prob: npt.NDArray[np.float32] | None) -> None:
        """Label, measure and trace one band of rows (mask: (h, W) bool, starting at row r0)."""
        import rasterio.features
        import shapely
        from affine import Affine
        from scipy import ndimage

        labels, n = ndimage.label(mask, structure=STRUCTURE_8)
        if n == 0:
            self.prev_bottom = None
            return
        base = len(self.counts)
        for g in range(base, base + n):
            self.groups.add(g)
            self.pieces.append([])
        flat = labels.ravel()
        self.counts.extend(int(c) for c in np.bincount(flat, minlength=n + 1)[1:])
        if prob is not None:
            psum = np.bincount(flat, weights=prob.ravel(), minlength=n + 1)[1:]
        else:
            psum = np.full(n, np.nan)
        self.sums.extend(float(v) for v in psum)
        self.first_row.extend(r0 + sl[0].start for sl in ndimage.find_objects(labels))
        traced = list(rasterio.features.shapes(
            labels.astype(np.int32, copy=False), mask=labels > 0, connectivity=CONNECTIVITY,
            transform=Affine.translation(0, r0),
        ))
        # Rings as arrays (shapely builds those in C; lists of tuples go through Python loops)
        pieces = np.array([shapely.Polygon(np.asarray(g["coordinates"][0], dtype=np.float64),
                                           [np.asarray(h, dtype=np.float64)
                                            for h in g["coordinates"][1:]])
                           for g, _ in traced], dtype=object)
        bad = ~shapely.is_valid(pieces)  # rings that touch themselves at a corner
        if bad.any():
            pieces[bad] = shapely.make_valid(pieces[bad], method="structure")
        for piece, (_, value) in zip(pieces, traced, strict=True):
            self.pieces[base + int(value) - 1].append(piece)
        # Global id + 1 in the first and last rows (0 = background); join with the band above.
        top = labels[0].astype(np.int64)
        top = np.where(top > 0, top + base, 0)
        if self.prev_bottom is not None:
            for up, down in _touching_pairs(self.prev_bottom, top):
                self.groups.merge(up - 1, down - 1)
        bottom = labels[-1].astype(np.int64)
        self.prev_bottom = np.where(bottom > 0, bottom + base, 0)


def polygonize_mask(
    mask_path: str | Path,
    probability_path: str | Path | None = None,
    band_rows: int = 256,
    min_area: float = 0.0,
) -> Polygons:
    """Trace the landslides (8-connected regions of value 1) of a mask GeoTIFF into polygons.

    Args:
        mask_path: uint8 mask raster: 0 background, 1 landslide, anything else ignored.
        probability_path: Probability raster on the same grid (uint8 codes of
            :func:`~landslip.encoding.encode_probability`, or float 0-1), for
            ``mean_probability``; NaN when None.
        band_rows: Rows read at a time (memory ~ ``band_rows * width * 22`` bytes).
        min_area: Drop polygons smaller than this many square metres.

    Returns:
        The :class:`Polygons`: one feature per landslide.
    """
    grid = raster_info(mask_path).grid
    tracer = MaskTracer(grid, band_rows)
    with ExitStack() as stack:
        mds = stack.enter_context(open_raster(mask_path))
        pds = (stack.enter_context(open_raster(probability_path))
               if probability_path is not None else None)
        for r0 in range(0, grid.height, band_rows):
            win = Window(r0, 0, min(band_rows, grid.height - r0), grid.width)
            mask = mds.read(1, window=win.to_rasterio()) == LANDSLIDE
            prob = _read_probability(pds, win) if pds is not None and mask.any() else None
            tracer.add(r0, mask, prob)
    return tracer.polygons(min_area)


class MaskTracer:
    """Trace a mask into polygons while it is being written, band by band, top to bottom.

    Fed the rows :func:`polygonize_mask` would read back from the finished file, it gives the
    same polygons without reading the file again (``landslip predict`` traces the row bands as
    it writes them).

    Args:
        grid: The mask's grid.
        band_rows: Rows traced at a time; :meth:`add` cuts what it gets at multiples of this
            (as :func:`polygonize_mask` reads), so any band heights give the same result.
    """

    def __init__(self, grid: Grid, band_rows: int = 256) -> None:
        self.grid = grid
        self.band_rows = band_rows
        self._comps = _Components()
        self._next_row = 0

    def add(self, r0: int, mask: npt.NDArray[np.bool_],
            prob: npt.NDArray[np.float32] | None) -> None:
        """Trace the next rows.

        Args:
            r0: First row; must be where the previous call ended (0 at first).
            mask: bool (h, width), True at landslide pixels.
            prob: float32 (h, width) probabilities (decoded as :func:`polygonize_mask` reads
                them), or None (``mean_probability`` NaN, or when no pixel is a landslide).

        Raises:
            ValueError: If the rows do not follow the previous ones.
        """
        if r0 != self._next_row:
            raise ValueError(f"rows must come in order: expected row {self._next_row}, got {r0}")
        self._next_row = r0 + mask.shape[0]
        a, n, h = 0, self.band_rows, mask.shape[0]
        while a < h:  # bands of the file reader: row multiples of band_rows
            cut = slice(a, min(a + n - (r0 + a) % n, h))
            part = mask[cut]
            self._comps.add_band(r0 + a, part, prob[cut] if prob is not None and part.any()
                                 else None)
            a = cut.stop

    def polygons(self, min_area: float = 0.0) -> Polygons:
        """The landslides traced so far (see :func:`polygonize_mask`)."""
        return _assemble(self.grid, self._comps, min_area)


def _assemble(grid: Grid, comps: _Components, min_area: float) -> Polygons:
    """Merge the pieces of each joined component into one feature, in map coordinates."""
    import geopandas as gpd
    import shapely

    per_pixel, geod = _area_factor(grid)
    t = grid.transform
    matrix = [t.a, t.b, t.d, t.e, t.c, t.f]
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    dropped = 0
    groups = [sorted(g) for g in comps.groups.subsets()]
    for members in sorted(groups, key=lambda m: min(comps.first_row[i] for i in m)):
        parts = [p for m in members for p in comps.pieces[m]]
        geom = parts[0] if len(parts) == 1 else shapely.union_all(parts).simplify(0)
        geom = shapely.affinity.affine_transform(geom, matrix)
        npix = sum(comps.counts[m] for m in members)
        if geod is not None:
            area = abs(float(geod.geometry_area_perimeter(geom)[0]))
        else:
            area = float(npix * (per_pixel or 0.0))
        if area < min_area:
            dropped += 1
            continue
        psum = sum(comps.sums[m] for m in members)
        rows.append({"id": len(rows) + 1, "area_m2": area, "pixels": int(npix),
                     "mean_probability": float(psum / npix) if npix else float("nan")})
        geoms.append(geom)
    dtypes = {"id": np.int64, "area_m2": np.float64, "pixels": np.int64,
              "mean_probability": np.float64}
    table = {k: np.array([r[k] for r in rows], dtype=dt) for k, dt in dtypes.items()}
    frame = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms, crs=grid.crs), crs=grid.crs)
    return Polygons(grid=grid, frame=frame, dropped=dropped)


def write_polygons(
    polygons: Polygons, gpkg_path: str | Path, geojson_path: str | Path | None = None
) -> None:
    """Write the polygons as a GeoPackage (layer ``landslides``) and optionally as GeoJSON in
    EPSG:4326 (RFC 7946), each atomically.

    The GeoPackage is version :data:`GPKG_VERSION` with an R-tree spatial index, so the GDAL 3.6
    tools of Debian 12 open it without warnings (GDAL >= 3.9 writes version 1.4 by default,
    which GDAL 3.6 reports as "may only be partially supported"); a layer holding any
    MultiPolygon declares MultiPolygon and holds only MultiPolygons.

    Raises:
        VectorIOError: If a file cannot be written, or GeoJSON is asked for without a CRS.
    """
    frame = polygons.frame
    multi = _has_multi(frame)
    if multi:  # one geometry type per layer, as the GeoPackage specification requires
        frame = frame.set_geometry(_to_multi(frame.geometry))
    try:
        with atomic_path(gpkg_path) as tmp:
            frame.to_file(tmp, driver="GPKG", layer="landslides", engine="pyogrio",
                          geometry_type="MultiPolygon" if multi else "Polygon",
                          dataset_options={"VERSION": GPKG_VERSION},
                          layer_options={"SPATIAL_INDEX": "YES"})
        if geojson_path is not None:
            if frame.crs is None:
                raise VectorIOError("cannot write GeoJSON in EPSG:4326: the image has no CRS")
            with atomic_path(geojson_path) as tmp:
                frame.to_crs(4326).to_file(tmp, driver="GeoJSON", layer="landslides",
                                           engine="pyogrio")
    except VectorIOError:
        raise
    except Exception as exc:
        raise VectorIOError(f"cannot write polygons to {gpkg_path}: {exc}") from exc


def _has_multi(frame: Any) -> bool:
    return bool(len(frame) and (frame.geometry.geom_type == "MultiPolygon").any())


def _to_multi(geoms: Any) -> Any:
    """The GeoSeries with every Polygon wrapped as a one-part MultiPolygon."""
    import shapely

    return geoms.apply(lambda g: shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g)
