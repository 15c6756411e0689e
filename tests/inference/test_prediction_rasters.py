"""probability.tif and landslides.tif: valid COGs with the scale, colours and overviews."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio
from rasterio.enums import ColorInterp

from landslip.io.cog import LANDSLIDE_RGB, check_cog


def test_prediction_rasters_are_styled_cogs(prediction: Path) -> None:
    for name in ("probability.tif", "landslides.tif"):
        check = check_cog(prediction / name)
        assert check.valid, check.errors
    with rasterio.open(prediction / "probability.tif") as ds:
        assert ds.descriptions == ("landslide probability",)
        assert ds.scales == (pytest.approx(1 / 254),) and ds.offsets == (0.0,)
        assert ds.colorinterp == (ColorInterp.gray,)
    with rasterio.open(prediction / "landslides.tif") as ds:
        assert ds.descriptions == ("landslide mask",)
        assert ds.colorinterp == (ColorInterp.palette,)
        assert ds.colormap(1)[1][:3] == LANDSLIDE_RGB
