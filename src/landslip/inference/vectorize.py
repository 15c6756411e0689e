"""Landslide polygons from the final mask GeoTIFF, read row band by row band.

The mask is never held whole: bands of ``band_rows`` rows are read, their landslide pixels
labelled into 4-connected components (:func:`scipy.ndimage.label`) and traced into polygons
(:func:`rasterio.features.shapes`, also 4-connected) in *pixel* coordinates, where every vertex
is an integer and pieces of one landslide cut by a band boundary share their edge exactly.
Components that touch across a band boundary are joined with a union-find and their pieces
merged (:func:`shapely.union_all`), so a landslide crossing any window or band border comes
out as one feature. Only then are polygons moved to map coordinates with the grid's affine
transform. Memory: one band of labels (``band_rows * width * 4`` bytes) plus the polygons.

Attributes per feature: ``id`` (1..n, top to bottom), ``area_m2`` (square metres: pixel area
in a projected CRS, geodesic area on the ellipsoid in a geographic one), ``pixels`` and
``mean_probability`` (mean of the probability raster over the polygon's pixels).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import VectorIOError
from landslip.grid import Grid, Window
from landslip.io.atomic import atomic_path
from landslip.io.raster import open_raster, raster_info

__all__ = ["Polygons", "polygonize_mask", "write_polygons"]

log = logging.getLogger(__name__)

LANDSLIDE = 1


@dataclass
class Polygons:
    """Landslide polygons in the mask's CRS.

    Attributes:
        grid: The mask's grid.
        frame: ``geopandas.GeoDataFrame`` with columns id, area_m2, pixels, mean_probability,
            geometry (Polygon or MultiPolygon), in the grid's CRS.
        dropped: Polygons removed by the minimum-area filter.
    """

    grid: Grid
    frame: Any
    dropped: int = 0


@dataclass
class _UnionFind:
    parent: list[int] = field(default_factory=list)

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _probability_scale(ds: Any) -> tuple[float, float | None]:
    """(factor to probability, nodata) of a probability raster (uint8 0-254 or float32)."""
    if str(ds.dtypes[0]) == "uint8":
        return 1.0 / 254.0, ds.nodata
    return 1.0, ds.nodata


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


def polygonize_mask(
    mask_path: str | Path,
    probability_path: str | Path | None = None,
    band_rows: int = 256,
    min_area: float = 0.0,
) -> Polygons:
    """Trace the landslide pixels (value 1) of a mask GeoTIFF into whole polygons.

    Args:
        mask_path: uint8 mask raster: 0 background, 1 landslide, anything else ignored.
        probability_path: Probability raster on the same grid (uint8 0-254 = 0-1, or float),
            for ``mean_probability``; NaN when None.
        band_rows: Rows read at a time (memory ~ ``band_rows * width * 22`` bytes).
        min_area: Drop polygons smaller than this many square metres.

    Returns:
        The :class:`Polygons`.
    """
    import geopandas as gpd
    import rasterio.features
    import shapely
    from affine import Affine
    from scipy import ndimage

    info = raster_info(mask_path)
    grid = info.grid
    structure = ndimage.generate_binary_structure(2, 1)  # 4-connected, as GDAL traces
    uf = _UnionFind()
    pieces: list[list[Any]] = []
    counts: list[int] = []
    sums: list[float] = []
    first_row: list[int] = []
    prev_bottom: npt.NDArray[np.int64] | None = None
    with open_raster(mask_path) as mds:
        pds_ctx = open_raster(probability_path) if probability_path is not None else None
        pds = pds_ctx.__enter__() if pds_ctx is not None else None
        try:
            scale = _probability_scale(pds)[0] if pds is not None else 1.0
            for r0 in range(0, grid.height, band_rows):
                win = Window(r0, 0, min(band_rows, grid.height - r0), grid.width)
                mask = mds.read(1, window=win.to_rasterio()) == LANDSLIDE
                labels, n = ndimage.label(mask, structure=structure)
                if n == 0:
                    prev_bottom = None
                    continue
                base = len(uf.parent)
                for _ in range(n):
                    uf.add()
                    pieces.append([])
                flat = labels.ravel()
                cnt = np.bincount(flat, minlength=n + 1)[1:]
                if pds is not None:
                    prob = pds.read(1, window=win.to_rasterio()).astype(np.float32)
                    prob *= np.float32(scale)
                    psum = np.bincount(flat, weights=prob.ravel(), minlength=n + 1)[1:]
                else:
                    psum = np.full(n, np.nan)
                counts.extend(int(c) for c in cnt)
                sums.extend(float(s) for s in psum)
                first_row.extend(r0 + sl[0].start for sl in ndimage.find_objects(labels))
                for geom, value in rasterio.features.shapes(
                    labels.astype(np.int32, copy=False), mask=labels > 0, connectivity=4,
                    transform=Affine.translation(0, r0),
                ):
                    pieces[base + int(value) - 1].append(shapely.geometry.shape(geom))
                # Encode the first and last rows as global id + 1 (0 = background) and join
                # components that touch across the boundary with the band above.
                top = labels[0].astype(np.int64)
                top = np.where(top > 0, top + base, 0)
                if prev_bottom is not None:
                    both = (prev_bottom > 0) & (top > 0)
                    pairs = set(zip(prev_bottom[both].tolist(), top[both].tolist(), strict=True))
                    for up, down in pairs:
                        uf.union(up - 1, down - 1)
                bottom = labels[-1].astype(np.int64)
                prev_bottom = np.where(bottom > 0, bottom + base, 0)
        finally:
            if pds_ctx is not None:
                pds_ctx.__exit__(None, None, None)
    return _assemble(grid, uf, pieces, counts, sums, first_row, min_area, gpd, shapely)


def _assemble(
    grid: Grid,
    uf: _UnionFind,
    pieces: list[list[Any]],
    counts: list[int],
    sums: list[float],
    first_row: list[int],
    min_area: float,
    gpd: Any,
    shapely: Any,
) -> Polygons:
    groups: dict[int, list[int]] = {}
    for g in range(len(uf.parent)):
        groups.setdefault(uf.find(g), []).append(g)
    per_pixel, geod = _area_factor(grid)
    t = grid.transform
    matrix = [t.a, t.b, t.d, t.e, t.c, t.f]
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    dropped = 0
    order = sorted(groups.values(), key=lambda members: min(first_row[m] for m in members))
    for members in order:
        parts = [p for m in members for p in pieces[m]]
        geom = parts[0] if len(parts) == 1 else shapely.union_all(parts).simplify(0)
        geom = shapely.affinity.affine_transform(geom, matrix)
        npix = sum(counts[m] for m in members)
        if geod is not None:
            area = abs(float(geod.geometry_area_perimeter(geom)[0]))
        else:
            area = float(npix * (per_pixel or 0.0))
        if area < min_area:
            dropped += 1
            continue
        psum = sum(sums[m] for m in members)
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

    Raises:
        VectorIOError: If a file cannot be written, or GeoJSON is asked for without a CRS.
    """
    frame = polygons.frame
    try:
        with atomic_path(gpkg_path) as tmp:
            frame.to_file(tmp, driver="GPKG", layer="landslides", engine="pyogrio",
                          geometry_type="MultiPolygon" if _has_multi(frame) else "Polygon")
        if geojson_path is not None:
            if frame.crs is None:
                raise VectorIOError("cannot write GeoJSON in EPSG:4326: the image has no CRS")
            with atomic_path(geojson_path) as tmp:
                frame.to_crs(4326).to_file(tmp, driver="GeoJSON", engine="pyogrio")
    except VectorIOError:
        raise
    except Exception as exc:
        raise VectorIOError(f"cannot write polygons to {gpkg_path}: {exc}") from exc


def _has_multi(frame: Any) -> bool:
    return bool(len(frame) and (frame.geometry.geom_type == "MultiPolygon").any())
