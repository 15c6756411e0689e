"""map.html: self-contained, offline, bounded; drawn by a real browser (headless Chromium)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.predictions import SCARS
from landslip.errors import InputError
from landslip.inference.mapview import map_polygons, write_map
from landslip.inference.quicklook import PROBABILITY_RAMP, image_overlay, probability_rgba
from landslip.io.cog import LANDSLIDE_RGB

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def page(prediction: Path) -> Path:
    """The map page of the module's prediction folder."""
    return write_map(prediction)


def _data(page: str) -> dict:
    m = re.search(r'<script id="landslip-data" type="application/json">(.*?)</script>',
                  page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_page_is_self_contained_and_complete(page: Path) -> None:
    """One file, nothing fetched: no external script, stylesheet, image or font; Leaflet and
    its CSS inline; the image, probability and polygons, and the summary, in the page."""
    assert page.name == "map.html"
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""\ssrc\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert "<link" not in text
    assert "@import" not in text and "sourceMappingURL" not in text
    assert "window.L" in text and ".leaflet-container" in text
    data = _data(text)
    assert data["image"]["name"] == "Image (true colour)"
    assert data["image"]["url"].startswith("data:image/png;base64,")
    assert data["probability"]["url"].startswith("data:image/png;base64,")
    feats = data["polygons"]["features"]
    assert len(feats) == len(SCARS)
    assert {f["properties"]["id"] for f in feats} == {1, 2, 3}
    lon, lat = np.array([c for f in feats for c in f["geometry"]["coordinates"][0]]).T
    assert (lon > 141.7).all() and (lon < 141.8).all() and (lat > 42.6).all() and (lat < 42.8).all()
    rows = {r[0]: r[1] for r in data["summary"]}
    assert rows["Landslides"] == "3" and rows["Threshold"] == "probability ≥ 0.5"
    assert rows["Scene"].startswith("144 x 160 px of 1.5 m, ")
    assert rows["Model"].startswith("unet (width 4, depth 2), bands bgrn")
    assert rows["Input"] == "scene.tif"
    assert rows["Total area"].endswith("m²")


def test_polygons_simplified_beyond_the_vertex_budget(prediction: Path) -> None:
    full = map_polygons(prediction / "landslides.gpkg", 1.5)
    assert full.tolerance == 0 and full.count == 3
    small = map_polygons(prediction / "landslides.gpkg", 1.5, max_vertices=12)
    assert small.tolerance > 0 and small.count == 3 and small.area_m2 == full.area_m2
    n = sum(len(f["geometry"]["coordinates"][0]) for f in small.geojson["features"])
    assert n <= 15


def test_quicklook_is_bounded_and_transparent_at_nodata(prediction: Path) -> None:
    image = Path(json.loads((prediction / "prediction.json").read_text())["image"])
    look = image_overlay(image, (3, 2, 1), max_px=40)
    assert max(look.shape) <= 40
    png = np.asarray(Image.open(io.BytesIO(look.png)))
    assert png.shape == (*look.shape, 4)
    assert (png[0, :, 3] == 0).all()  # rows 0-3 of the scene are nodata
    (south, west), (north, east) = look.bounds
    assert south < north and west < east
    rgba = probability_rgba(np.array([[np.nan, 0.0, 1.0]], np.float32))
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == 0
    assert tuple(rgba[0, 2, :3]) == PROBABILITY_RAMP[-1] and rgba[0, 2, 3] == 220


def test_folder_without_prediction_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a prediction folder"):
        write_map(tmp_path)


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.skip("no Chromium found (apt-get install chromium; .ci/run installs it as root)")


def _browser(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Open ``page`` in headless Chromium with every network request refused."""
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            "--window-size=1200,800", "--virtual-time-budget=5000", *extra, page.as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)


def test_chromium_draws_map_layers_and_summary_offline(page: Path, tmp_path: Path) -> None:
    """Headless Chromium, network off: Leaflet builds its panes, both image layers, one SVG
    path per landslide, the layer switcher, scale bar, legend and summary; the screenshot is
    not blank and shows the landslide colour."""
    dom = _browser(page, tmp_path / "profile-dom", "--dump-dom").stdout
    assert 'data-landslip-ready="1"' in dom
    for pane in ("leaflet-map-pane", "leaflet-overlay-pane"):
        assert pane in dom
    assert len(re.findall(r'<img[^>]*class="[^"]*landslip-image', dom)) == 1
    assert len(re.findall(r'<img[^>]*class="[^"]*landslip-probability', dom)) == 1
    assert len(re.findall(r'<path[^>]*class="[^"]*landslip-polygon', dom)) == len(SCARS)
    assert "leaflet-control-layers" in dom and "Landslides (3)" in dom
    assert "leaflet-control-scale-line" in dom
    summary = re.search(r'id="landslip-summary".*?</table>', dom, re.S)
    assert summary is not None
    assert re.search(r"<th[^>]*>Landslides</th><td[^>]*>3</td>", summary.group(0))
    assert "scene.tif" in summary.group(0)
    assert 'id="landslip-legend"' in dom

    shot = tmp_path / "shot.png"
    _browser(page, tmp_path / "profile-shot", f"--screenshot={shot}")
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    assert img.shape[:2] == (800, 1200)
    assert img.std() > 20  # not a blank page
    near = np.abs(img - np.array(LANDSLIDE_RGB, np.int16)).max(axis=-1) <= 12
    assert near.sum() > 100, "no landslide outline drawn"
