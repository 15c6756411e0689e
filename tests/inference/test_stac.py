"""stac-item.json: a STAC 1.0.0 Item with the projection extension describing a prediction."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import shapely
from pyproj import Transformer

from landslip.inference.stac import PROJECTION_EXTENSION, stac_item
from landslip.io.raster import raster_info


def test_item_has_the_required_fields_and_projection(prediction: Path) -> None:
    item = json.loads((prediction / "stac-item.json").read_text())
    assert item["type"] == "Feature" and item["stac_version"] == "1.0.0"
    assert item["stac_extensions"] == [PROJECTION_EXTENSION]
    assert isinstance(item["id"], str) and item["id"]
    props = item["properties"]
    datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
    grid = raster_info(prediction / "probability.tif").grid
    assert props["proj:epsg"] == 32654 and "WGS 84 / UTM zone 54N" in props["proj:wkt2"]
    assert props["proj:shape"] == [grid.height, grid.width]
    t = grid.transform
    assert props["proj:transform"] == [t.a, t.b, t.c, t.d, t.e, t.f, 0.0, 0.0, 1.0]
    assert props["landslip:threshold"] == 0.5 and props["landslip:polygons"] == 3
    # Footprint in EPSG:4326: contains every grid corner, bbox = its bounds.
    footprint = shapely.geometry.shape(item["geometry"])
    assert footprint.is_valid and item["geometry"]["type"] == "Polygon"
    assert item["bbox"] == pytest.approx(list(footprint.bounds), abs=1e-7)
    to_ll = Transformer.from_crs(32654, 4326, always_xy=True)
    left, bottom, right, top = grid.bounds
    for x, y in ((left, bottom), (left, top), (right, bottom), (right, top)):
        lon, lat = to_ll.transform(x, y)
        assert footprint.buffer(1e-7).contains(shapely.Point(lon, lat))


def test_assets_and_links_point_at_the_files(prediction: Path) -> None:
    item = json.loads((prediction / "stac-item.json").read_text())
    assets = item["assets"]
    assert set(assets) == {"probability", "mask", "polygons", "geojson", "metadata"}
    for asset in assets.values():
        assert (prediction / asset["href"]).is_file()
        assert asset["roles"] and asset["type"]
    assert "profile=cloud-optimized" in assets["probability"]["type"]
    assert assets["polygons"]["type"] == "application/geopackage+sqlite3"
    derived = [link for link in item["links"] if link["rel"] == "derived_from"]
    assert {Path(link["href"]).name for link in derived} == {"scene.tif", "model.json"}
    assert all(Path(link["href"]).is_file() for link in derived)


def test_map_page_becomes_an_asset(prediction: Path) -> None:
    (prediction / "map.html").write_text("<html></html>")
    try:
        assert stac_item(prediction)["assets"]["map"]["href"] == "./map.html"
    finally:
        (prediction / "map.html").unlink()


def test_pystac_reads_the_item(prediction: Path) -> None:
    """pystac (a dev dependency) parses the item and its projection fields."""
    pystac = pytest.importorskip("pystac")
    from pystac.extensions.projection import ProjectionExtension

    d = json.loads((prediction / "stac-item.json").read_text())
    item = pystac.Item.from_dict(d, migrate=False)
    assert item.bbox == d["bbox"] and item.datetime is not None
    assert ProjectionExtension.has_extension(item)
    assert item.properties["proj:shape"] == d["properties"]["proj:shape"]
    assert item.assets["probability"].href.endswith("probability.tif")
