"""Fractal terrain with river valleys, slope and aspect, and sun illumination with cast shadows.

The terrain is a pure function of local map coordinates (metres east and north of a reference
point) and the seed, so any block of the scene can be computed on its own:

* rivers follow the zero contour of a low-frequency noise field ``n``; the distance to the
  river is approximated by ``|n| / |grad n|`` (exact near the contour);
* a flat valley floor (flood plain) of varying half-width surrounds each river, then the hills
  rise over a ramp (a smoothstep of the river distance), so slopes are steepest at the valley
  sides, where the 2018 Iburi landslides clustered;
* the hills are fractal (fBm, 1/f spectrum) with a ridged component that makes sharp ridges.

Illumination follows the Lambertian cosine of the incidence angle between the surface normal
and the sun, plus cast shadows found by marching from each pixel towards the sun over a
coarser (6 m) height field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from landslip.synthetic.noise import coarse_field, fbm
from landslip.synthetic.solar import SunPosition

__all__ = ["TerrainBlock", "TerrainModel", "cast_shadow_lit", "illumination"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_SALT_RIVER = 1
_SALT_WIDTH = 2
_SALT_HILLS = 3
_SALT_RIDGE = 4
_SALT_BASE = 5
_GRAD_STEP_M = 1.5


@dataclass(frozen=True)
class TerrainBlock:
    """Terrain of one block of pixels (all arrays (H, W)).

    Attributes:
        height: Elevation in metres, float32.
        river_distance: Approximate distance to the nearest river centre line, metres.
        valley: 0 on the valley floor, 1 on the hills (smooth in between).
        slope_deg: Slope in degrees.
        cos_incidence: Cosine of the sun's incidence angle on the surface (may be negative:
            self-shadow).
    """

    height: F32
    river_distance: F32
    valley: F32
    slope_deg: F32
    cos_incidence: F32


def _smoothstep(t: F32) -> F32:
    t = np.clip(t, 0.0, 1.0)
    return np.asarray(t * t * (3.0 - 2.0 * t), dtype=np.float32)


@dataclass(frozen=True)
class TerrainModel:
    """A seeded terrain: heights and valleys as functions of local coordinates in metres.

    Attributes:
        seed: Scene seed.
        relief_m: Height of the hills above the valley floor, metres.
        hill_wavelength_m: Wavelength of the largest hill features, metres.
        river_wavelength_m: Wavelength of the river network noise, metres.
        valley_halfwidth_m: Mean half-width of the flat valley floors, metres.
        valley_ramp_m: Horizontal distance over which the hills rise from the floor, metres.
    """

    seed: int
    relief_m: float = 150.0
    hill_wavelength_m: float = 1400.0
    river_wavelength_m: float = 2400.0
    valley_halfwidth_m: float = 110.0
    valley_ramp_m: float = 330.0

    # -- component fields ----------------------------------------------------------------
    def _river_noise(self, x: F64, y: F64) -> F32:
        return fbm(x, y, self.seed, _SALT_RIVER, self.river_wavelength_m, octaves=2, gain=0.4)

    def _river_grad(self, x: F64, y: F64) -> tuple[F32, F32, F32]:
        e = _GRAD_STEP_M
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        # one call on the five stencils stacked: far fewer, larger numpy operations
        xs = np.stack([x, x + e, x - e, x, x])
        ys = np.stack([y, y, y, y + e, y - e])
        v = self._river_noise(xs, ys)
        gx = (v[1] - v[2]) / np.float32(2 * e)
        gy = (v[3] - v[4]) / np.float32(2 * e)
        return v[0], np.asarray(gx, np.float32), np.asarray(gy, np.float32)

    def _halfwidth(self, x: F64, y: F64) -> F32:
        w = fbm(x, y, self.seed, _SALT_WIDTH, 1800.0, octaves=2)
        return np.asarray(self.valley_halfwidth_m * (0.5 + 1.0 / (1.0 + np.exp(-6.0 * w))),
                          dtype=np.float32)

    def _base(self, x: F64, y: F64) -> F32:
        return np.asarray(45.0 + 25.0 * fbm(x, y, self.seed, _SALT_BASE, 5000.0, octaves=2),
                          dtype=np.float32)

    def _hills(self, x: F64, y: F64) -> F32:
        f = fbm(x, y, self.seed, _SALT_HILLS, self.hill_wavelength_m, octaves=6, gain=0.5)
        # ridged component: 1 - |fbm| is sharp where the noise crosses zero (two octaves, so
        # that the zero lines do not follow the lattice of a single Perlin layer)
        r = 1.0 - np.abs(fbm(x, y, self.seed, _SALT_RIDGE, 0.8 * self.hill_wavelength_m,
                             octaves=2, gain=0.45))
        raw = 0.55 + 1.5 * f + 0.45 * (r * r - 0.5)
        soft = 0.1 + np.logaddexp(0.0, 8.0 * (raw - 0.1)) / 8.0  # smooth floor at 0.1
        return np.asarray(soft, dtype=np.float32)

    def _compose(self, n: F32, gx: F32, gy: F32, halfwidth: F32, base: F32,
                 hills: F32) -> tuple[F32, F32, F32]:
        grad = np.maximum(np.hypot(gx, gy), np.float32(1e-7))
        dist = np.minimum(np.abs(n) / grad, np.float32(1e5)).astype(np.float32)
        ramp = np.float32(self.valley_ramp_m) * (halfwidth / np.float32(self.valley_halfwidth_m))
        valley = _smoothstep((dist - halfwidth) / ramp)
        height = base + np.float32(self.relief_m) * valley * hills
        return np.asarray(height, np.float32), dist, valley

    # -- point evaluation ----------------------------------------------------------------
    def height(self, x: F64, y: F64) -> F32:
        """Elevation in metres at local coordinates (x east, y north; metres; any shape)."""
        n, gx, gy = self._river_grad(x, y)
        return self._compose(n, gx, gy, self._halfwidth(x, y), self._base(x, y),
                             self._hills(x, y))[0]

    def gradient(self, x: F64, y: F64, step: float = 1.5) -> tuple[F32, F32]:
        """(dh/dx, dh/dy) by central differences at local coordinates (metres per metre)."""
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        h = self.height(np.stack([x + step, x - step, x, x]), np.stack([y, y, y + step, y - step]))
        hx = (h[0] - h[1]) / np.float32(2 * step)
        hy = (h[2] - h[3]) / np.float32(2 * step)
        return np.asarray(hx, np.float32), np.asarray(hy, np.float32)

    # -- block evaluation ----------------------------------------------------------------
    def height_grid(self, x0: float, y0: float, res: float, height: int,
                    width: int) -> tuple[F32, F32, F32]:
        """Heights, river distance and valley factor on a block of pixel centres.

        Low-frequency components are evaluated on a global 6 m lattice and interpolated
        (block-independent); the hill detail at every pixel.

        Args:
            x0, y0: Local coordinates of the block's upper-left corner (metres, y up).
            res: Pixel size in metres.
            height, width: Block shape in pixels.

        Returns:
            (height m, river distance m, valley factor 0..1), float32 arrays (H, W).
        """
        xs = (x0 + (np.arange(width) + 0.5) * res).astype(np.float64)[None, :]
        ys = (y0 - (np.arange(height) + 0.5) * res).astype(np.float64)[:, None]
        step = 6.0

        def cf(fn: object) -> F32:
            return coarse_field(fn, x0, y0, res, height, width, step)  # type: ignore[arg-type]

        n = cf(self._river_noise)
        gx = cf(lambda x, y: self._river_grad(x, y)[1])
        gy = cf(lambda x, y: self._river_grad(x, y)[2])
        halfwidth = cf(self._halfwidth)
        base = cf(self._base)
        hills = self._hills(xs, ys)
        return self._compose(n, gx, gy, halfwidth, base, hills)

    def block(self, x0: float, y0: float, res: float, height: int, width: int,
              sun: SunPosition) -> TerrainBlock:
        """Terrain, slope and sun incidence of a block (computed with a 1-pixel halo)."""
        h, dist, valley = self.height_grid(x0 - res, y0 + res, res, height + 2, width + 2)
        cos_i, slope = illumination(h, res, sun)
        return TerrainBlock(
            height=h[1:-1, 1:-1].copy(),
            river_distance=dist[1:-1, 1:-1].copy(),
            valley=valley[1:-1, 1:-1].copy(),
            slope_deg=slope,
            cos_incidence=cos_i,
        )


def illumination(h: F32, res: float, sun: SunPosition) -> tuple[F32, F32]:
    """Cosine of the sun's incidence angle and slope from a height block with a 1-pixel halo.

    Args:
        h: Heights (H + 2, W + 2) in metres, rows running south.
        res: Pixel size in metres.
        sun: Sun position.

    Returns:
        (cos_incidence, slope_deg), float32 arrays (H, W).
    """
    dzdx = (h[1:-1, 2:] - h[1:-1, :-2]) / np.float32(2 * res)
    dzdy = (h[:-2, 1:-1] - h[2:, 1:-1]) / np.float32(2 * res)  # north is up (row - 1)
    norm = np.sqrt(dzdx * dzdx + dzdy * dzdy + np.float32(1.0))
    se, sn, su = sun.vector
    cos_i = (-dzdx * np.float32(se) - dzdy * np.float32(sn) + np.float32(su)) / norm
    slope = np.degrees(np.arccos(np.float32(1.0) / norm))
    return np.asarray(cos_i, np.float32), np.asarray(slope, np.float32)


def cast_shadow_lit(
    terrain: TerrainModel,
    x0: float,
    y0: float,
    res: float,
    height: int,
    width: int,
    sun: SunPosition,
    factor: int = 4,
) -> F32:
    """Fraction of the sun's disc visible (0 in cast shadow, 1 lit) for a block.

    Marches from every pixel of a ``factor`` times coarser height grid towards the sun, up
    to the distance where the highest hills could still cast a shadow, and compares the
    steepest elevation angle of the terrain on the way with the sun's elevation. The margin
    is interpolated back to the block's pixels, which gives soft shadow edges (~half a
    degree, about the sun's disc).

    Args:
        terrain: The terrain.
        x0, y0: Local coordinates of the block's upper-left corner (metres, y up).
        res: Pixel size in metres.
        height, width: Block shape in pixels (multiples of ``factor`` not required).
        sun: Sun position (elevation > 0).
        factor: Coarsening of the height grid used for marching.

    Returns:
        float32 array (H, W) in [0, 1].
    """
    from scipy.ndimage import map_coordinates

    tan_el = math.tan(math.radians(max(sun.elevation_deg, 1.0)))
    cres = res * factor
    max_rise = terrain.relief_m * 1.5 + 60.0
    reach = math.ceil(max_rise / tan_el / cres) + 1
    se, sn, _ = sun.vector
    horiz = math.hypot(se, sn) or 1.0
    dcol, drow = se / horiz, -sn / horiz  # one coarse pixel towards the sun
    ch = height // factor + 2
    cw = width // factor + 2
    # coarse grid: one pixel of margin on the far side, ``reach`` pixels towards the sun
    pad_l = reach if dcol < 0 else 1
    pad_r = reach if dcol > 0 else 1
    pad_t = reach if drow < 0 else 1
    pad_b = reach if drow > 0 else 1
    gx0 = x0 - pad_l * cres
    gy0 = y0 + pad_t * cres
    hc, _, _ = terrain.height_grid(gx0, gy0, cres, ch + pad_t + pad_b, cw + pad_l + pad_r)
    core = hc[pad_t:pad_t + ch, pad_l:pad_l + cw]
    best = np.full(core.shape, -np.inf, dtype=np.float32)
    k = 1
    while k <= reach:
        r = round(k * drow)
        c = round(k * dcol)
        d = math.hypot(r, c) * cres
        if d > 0:
            other = hc[pad_t + r:pad_t + r + ch, pad_l + c:pad_l + c + cw]
            np.maximum(best, (other - core) / np.float32(d), out=best)
        k += 1 if k < 24 else 2
    margin = np.float32(tan_el) - best  # > 0: lit
    # fine pixel (r, c) centre in coarse pixel units of the core (core starts 0 at x0 - 0)
    rows = (np.arange(height) + 0.5) / factor - 0.5
    cols = (np.arange(width) + 0.5) / factor - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    fine = map_coordinates(margin, [rr, cc], order=1, mode="nearest")
    return np.asarray(np.clip(0.5 + fine / np.float32(0.02), 0.0, 1.0), dtype=np.float32)
