"""Band names from descriptions or colour interpretation; alpha is never a data band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from helpers.inputs import utm_grid, write_scene
from landslip.errors import BandError
from landslip.inference.predict import match_bands
from landslip.io.raster import raster_info
from landslip.spectral.bands import resolve_band_set
from landslip.spectral.naming import (
    band_slots,
    data_bands,
    file_band_names,
    image_band_names,
    naming_hint,
)


def _rgb(path: Path, order: tuple[ColorInterp, ...], alpha: bool = False) -> Path:
    """A GeoTIFF without band descriptions whose bands carry colour interpretations."""
    n = len(order) + alpha
    g = utm_grid(8, 8)
    with rasterio.open(path, "w", driver="GTiff", height=8, width=8, count=n, dtype="uint8",
                       crs=g.crs, transform=g.transform,
                       **({"photometric": "RGB", "alpha": "YES"} if alpha else {})) as ds:
        ds.write(np.arange(n * 64, dtype=np.uint8).reshape(n, 8, 8) % 200 + 1)
        ds.colorinterp = [*order, *([ColorInterp.alpha] if alpha else [])]
    return path


def test_colour_interpretation_names_the_bands_in_file_order(tmp_path: Path) -> None:
    rgb = raster_info(_rgb(tmp_path / "rgb.tif", (ColorInterp.red, ColorInterp.green,
                                                  ColorInterp.blue)))
    bgr = raster_info(_rgb(tmp_path / "bgr.tif", (ColorInterp.blue, ColorInterp.green,
                                                  ColorInterp.red)))
    assert rgb.descriptions == (None, None, None)
    assert image_band_names(rgb) == ((1, 2, 3), ["red", "green", "blue"])
    assert image_band_names(bgr) == ((1, 2, 3), ["blue", "green", "red"])
    # predict finds the bands by colour: never swapped
    assert match_bands(rgb, resolve_band_set("bgr")) == (3, 2, 1)
    assert match_bands(bgr, resolve_band_set("bgr")) == (1, 2, 3)


def test_alpha_is_dropped_and_named_bands_keep_their_place(tmp_path: Path) -> None:
    info = raster_info(_rgb(tmp_path / "rgba.tif", (ColorInterp.red, ColorInterp.green,
                                                   ColorInterp.blue), alpha=True))
    assert info.colorinterp[-1] == "alpha" and info.masked
    assert data_bands(info.colorinterp, info.count) == (1, 2, 3)
    assert image_band_names(info) == ((1, 2, 3), ["red", "green", "blue"])
    # three names for three data bands, or four for all bands (the alpha's is ignored)
    assert band_slots(info, ["r", "g", "b"]) == ["r", "g", "b", ""]
    assert band_slots(info, ["r", "g", "b", "a"]) == ["r", "g", "b", ""]
    with pytest.raises(BandError, match="3 data band"):
        band_slots(info, ["r", "g"])


def test_unknown_names_are_asked_for_without_guessing_an_order(tmp_path: Path) -> None:
    info = raster_info(write_scene(tmp_path / "anon.tif", names=None))
    with pytest.raises(BandError) as err:
        image_band_names(info)
    assert "--band-names NAME1,NAME2,NAME3,NAME4" in str(err.value)
    assert "blue,green" not in str(err.value)
    with pytest.raises(BandError, match="NAME1,NAME2,NAME3,NAME4 \\(the model needs blue"):
        match_bands(info, resolve_band_set("bgr"))
    assert naming_hint(3).count("NAME") == 3


def test_descriptions_win_over_colour_and_given_names_win_over_both(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert file_band_names(["NIR", "Red"], ["red", "green"], 2) == ["nir", "red"]
    assert file_band_names([None, None], ["gray", "undefined"], 2) is None
    assert file_band_names([None, None], ["red", "red"], 2) is None  # two reds: unknown
    info = raster_info(write_scene(tmp_path / "a.tif"))
    assert image_band_names(info, ["b1", "b2", "b3", "b4"])[1] == ["b1", "b2", "b3", "b4"]
    assert "instead of the file's band names blue,green,red,nir" in caplog.text
