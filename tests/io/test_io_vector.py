"""Vector reading: any OGR format, CRS checks, repair of invalid polygons, reprojection."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from landslip.errors import LabelError, VectorIOError
from landslip.io.vector import read_polygons, read_vector, repair_polygons


def test_geopackage_layer_reprojected(tmp_path: Path) -> None:
    path = tmp_path / "labels.gpkg"
    frame = gpd.GeoDataFrame({"kind": ["a", "b"]},
                             geometry=[box(141.9, 42.7, 141.901, 42.701),
                                       box(141.91, 42.71, 141.911, 42.711)], crs="EPSG:4326")
    frame.to_file(path, layer="slides", driver="GPKG")
    frame.iloc[:1].to_file(path, layer="other", driver="GPKG")
    layer = read_polygons(path, target_crs="EPSG:32654", layer="slides")
    assert len(layer.frame) == 2 and layer.frame.crs.to_epsg() == 32654
    assert layer.source_crs.to_epsg() == 4326
    x0, y0, x1, y1 = layer.frame.geometry.iloc[0].bounds
    assert 570000 < x0 < 580000 and 4_720_000 < y0 < 4_740_000
    assert 70 < x1 - x0 < 90 and 100 < y1 - y0 < 120  # 0.001 deg of lon/lat in metres
    assert len(read_polygons(path, where="kind = 'b'", layer="slides").frame) == 1


def test_repair_keeps_polygonal_parts() -> None:
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
    frame = gpd.GeoDataFrame(geometry=[bowtie, box(5, 5, 6, 6), Polygon()], crs="EPSG:32654")
    fixed, n_empty, n_repaired = repair_polygons(frame)
    assert (n_empty, n_repaired) == (1, 1)
    assert len(fixed) == 2 and fixed.is_valid.all()
    assert isinstance(fixed.geometry.iloc[0], MultiPolygon)
    assert fixed.geometry.iloc[0].area == pytest.approx(2.0)


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(VectorIOError, match="not found"):
        read_vector(tmp_path / "none.geojson")
    junk = tmp_path / "junk.geojson"
    junk.write_text("this is not json")
    with pytest.raises(VectorIOError, match="cannot read"):
        read_vector(junk)
    lines = tmp_path / "lines.gpkg"
    gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)]), box(0, 0, 1, 1)],
                     crs="EPSG:32654").to_file(lines)
    with pytest.raises(LabelError, match="1 LineString"):
        read_polygons(lines)
