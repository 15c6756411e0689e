"""landslides.gpkg opens without warnings in the GDAL 3.6 tools of Debian 12, spatially indexed."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasterio.crs import CRS

from landslip.grid import Grid
from landslip.inference.vectorize import GPKG_VERSION, Polygons, write_polygons

GRID = Grid.from_bounds(CRS.from_epsg(32654), 500000.0, 4700000.0, 1.5, 100, 100)


def _polygons(multi: bool) -> Polygons:
    geoms = [shapely.box(500000, 4699900, 500010, 4699910),
             shapely.box(500020, 4699900, 500030, 4699910)]
    if multi:
        geoms.append(shapely.MultiPolygon([shapely.box(500040, 4699900, 500045, 4699905),
                                           shapely.box(500045, 4699905, 500050, 4699910)]))
    n = len(geoms)
    frame = gpd.GeoDataFrame(
        {"id": np.arange(1, n + 1), "area_m2": np.full(n, 100.0),
         "pixels": np.full(n, 44), "mean_probability": np.full(n, 0.7)},
        geometry=gpd.GeoSeries(geoms, crs=GRID.crs), crs=GRID.crs)
    return Polygons(GRID, frame)


@pytest.mark.parametrize("multi", [False, True])
def test_gpkg_version_spatial_index_and_one_geometry_type(tmp_path: Path, multi: bool) -> None:
    """Version 1.2 (GDAL >= 3.9 would write 1.4, which GDAL 3.6 warns about), an R-tree index,
    and a layer of MultiPolygons only once any feature is one."""
    path = tmp_path / "landslides.gpkg"
    write_polygons(_polygons(multi), path)
    with sqlite3.connect(path) as db:
        major, minor = (int(v) for v in GPKG_VERSION.split("."))
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10000 * major + 100 * minor
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        assert "rtree_landslides_geom" in tables
        assert db.execute("SELECT count(*) FROM rtree_landslides_geom").fetchone()[0] == (
            3 if multi else 2)
        ext = db.execute("SELECT extension_name FROM gpkg_extensions "
                         "WHERE table_name = 'landslides'").fetchall()
        assert ("gpkg_rtree_index",) in ext
    back = gpd.read_file(path)
    assert set(back.geom_type) == ({"MultiPolygon"} if multi else {"Polygon"})
    assert back.geometry.area.sum() == pytest.approx(250.0 if multi else 200.0)


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed")
@pytest.mark.parametrize("multi", [False, True])
def test_ogrinfo_reads_the_gpkg_without_warnings(tmp_path: Path, multi: bool) -> None:
    """``ogrinfo -al -so`` and a full ``ogrinfo -al`` of the system's GDAL print no warning."""
    path = tmp_path / "landslides.gpkg"
    write_polygons(_polygons(multi), path)
    for args in (["-al", "-so"], ["-al"]):
        r = subprocess.run(["ogrinfo", "-ro", *args, str(path)], capture_output=True,
                           text=True, check=True)
        assert "Warning" not in r.stderr and "ERROR" not in r.stderr, r.stderr
        assert "Feature Count: " + ("3" if multi else "2") in r.stdout
