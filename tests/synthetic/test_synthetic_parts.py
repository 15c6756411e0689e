"""Pieces of the scene generator: sun, noise, terrain and land cover are block-independent."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from landslip.errors import InputError
from landslip.synthetic.landcover import LandslideAttrs, render_landcover
from landslip.synthetic.landslides import LandslideConfig, generate_landslides
from landslip.synthetic.noise import cell_hash, fbm, perlin
from landslip.synthetic.solar import SPOT7_ATSUMA_TIME, solar_position
from landslip.synthetic.terrain import TerrainModel, cast_shadow_lit


def test_sun_for_the_spot7_acquisition() -> None:
    sun = solar_position(42.7, 141.9, SPOT7_ATSUMA_TIME)
    assert 140 < sun.azimuth_deg < 165  # south-east in the morning
    assert 35 < sun.elevation_deg < 45
    # at solar noon the elevation is 90 - latitude + declination (about -4 deg on 4 Oct)
    noon = solar_position(42.7, 141.9, datetime(2018, 10, 4, 2, 25, tzinfo=UTC))
    assert noon.elevation_deg == pytest.approx(90 - 42.7 - 4.0, abs=0.6)
    assert noon.azimuth_deg == pytest.approx(180, abs=3)


def test_noise_is_smooth_deterministic_and_bounded() -> None:
    x = np.linspace(-3.0, 3.0, 601)
    a = perlin(x, np.full_like(x, 0.37), seed=1, salt=2)
    assert np.abs(np.diff(a)).max() < 0.05  # continuous across lattice lines
    np.testing.assert_array_equal(a, perlin(x, np.full_like(x, 0.37), seed=1, salt=2))
    assert not np.array_equal(a, perlin(x, np.full_like(x, 0.37), seed=2, salt=2))
    h = cell_hash(np.arange(-500, 500), np.zeros(1000, np.int64), seed=3, salt=1)
    assert h.min() >= 0 and h.max() < 1 and 0.4 < h.mean() < 0.6
    f = fbm(x[None, :] * 100, x[:, None] * 100, seed=1, salt=3, wavelength=300.0)
    assert np.abs(f).max() <= 1.0


def test_terrain_and_shadows_do_not_depend_on_the_block() -> None:
    t = TerrainModel(seed=7)
    sun = solar_position(42.7, 141.9, SPOT7_ATSUMA_TIME)
    big = t.block(-300.0, 300.0, 1.5, 200, 200, sun)
    sub = t.block(-300.0 + 40 * 1.5, 300.0 - 60 * 1.5, 1.5, 64, 80, sun)
    np.testing.assert_allclose(sub.height, big.height[60:124, 40:120], atol=1e-3)
    np.testing.assert_allclose(sub.slope_deg, big.slope_deg[60:124, 40:120], atol=0.05)
    lit_big = cast_shadow_lit(t, -300.0, 300.0, 1.5, 200, 200, sun)
    lit_sub = cast_shadow_lit(t, -300.0 + 40 * 1.5, 300.0 - 60 * 1.5, 1.5, 64, 80, sun)
    np.testing.assert_allclose(lit_sub, lit_big[60:124, 40:120], atol=1e-3)


def test_landcover_does_not_depend_on_the_block() -> None:
    t = TerrainModel(seed=3)
    sun = solar_position(42.7, 141.9, SPOT7_ATSUMA_TIME)
    attrs = LandslideAttrs(np.ones(1, np.float32), np.zeros(1, np.float32),
                           np.zeros(1, np.float32))

    def render(x0: float, y0: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        tb = t.block(x0, y0, 1.5, h, w, sun)
        xs = x0 + (np.arange(w) + 0.5) * 1.5
        ys = y0 - (np.arange(h) + 0.5) * 1.5
        return render_landcover(xs, ys, tb, np.zeros((h, w), np.int32), attrs, seed=3)

    cls_big, refl_big = render(-600.0, 600.0, 256, 256)
    cls_sub, refl_sub = render(-600.0 + 100 * 1.5, 600.0 - 36 * 1.5, 96, 120)
    assert np.mean(cls_sub == cls_big[36:132, 100:220]) > 0.999
    same = cls_sub == cls_big[36:132, 100:220]
    np.testing.assert_allclose(refl_sub[:, same], refl_big[:, 36:132, 100:220][:, same],
                               atol=2e-3)


def test_landslides_start_on_slopes_and_run_downhill() -> None:
    t = TerrainModel(seed=11)
    fp = (-600.0, -600.0, 600.0, 600.0)
    polys = generate_landslides(t, fp, (9000.0, 0.0), seed=11, config=LandslideConfig())
    area = sum(p.area for p in polys)
    assert 0.02 <= area / 1200.0**2 <= 0.08
    pts = np.array([p.representative_point().coords[0] for p in polys])
    gx, gy = t.gradient(pts[:, 0], pts[:, 1])
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    xs = np.linspace(-600, 600, 60)
    ax, ay = t.gradient(xs[None, :].repeat(60, 0), xs[:, None].repeat(60, 1))
    assert np.median(slope) > np.median(np.degrees(np.arctan(np.hypot(ax, ay)))) + 5


def test_landslide_config_is_validated() -> None:
    with pytest.raises(InputError):
        LandslideConfig(fraction_range=(0.05, 0.04), target_fraction=0.045)
    with pytest.raises(InputError):
        LandslideConfig(min_length_m=50, max_length_m=10)
