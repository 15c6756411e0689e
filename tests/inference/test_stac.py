"""stac-item.json: a STAC 1.0.0 Item with the projection extension describing a prediction."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from helpers.predictions import BANDS, RedLogit
from landslip.errors import InputError
from landslip.grid import Grid
from landslip.inference.predict import PredictOptions, predict_image
from landslip.inference.stac import PROJECTION_EXTENSION, stac_item
from landslip.inference.stream import InputSpec
from landslip.io.raster import raster_info, read_raster, write_raster
from landslip.spectral.bands import resolve_band_set


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


def test_item_without_crs_has_no_geometry(prediction: Path, tmp_path: Path) -> None:
    """A prediction on an image without CRS: null geometry, no bbox, proj:epsg null."""
    pred = tmp_path / "pred"
    shutil.copytree(prediction, pred)
    codes, grid = read_raster(pred / "probability.tif")
    write_raster(pred / "probability.tif", codes,
                 Grid(None, grid.transform, grid.height, grid.width), nodata=255)
    item = stac_item(pred)
    assert item["geometry"] is None and "bbox" not in item
    assert item["properties"]["proj:epsg"] is None
    assert "proj:wkt2" not in item["properties"]


def test_html_without_crs_is_refused_before_writing(tmp_path: Path) -> None:
    image = tmp_path / "nocrs.tif"
    write_raster(image, np.ones((4, 32, 32), np.uint16), Grid.from_bounds(None, 0, 32, 1, 32, 32),
                 descriptions=BANDS)
    spec = InputSpec(resolve_band_set("red"), (3,), (0.0,), (1.0,), None)
    with pytest.raises(InputError, match="no CRS, so --html"):
        predict_image(RedLogit(), spec, image, tmp_path / "out", PredictOptions(html=True))
    assert not (tmp_path / "out").exists()
