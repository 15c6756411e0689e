"""Land cover and surface reflectance of a block: forest, fields, roads, rivers, settlements.

Every rule is a function of the local map coordinates, the terrain and the seed (noise fields,
hashed parcel grids), so blocks are independent. Classes and their surface reflectances
(blue, green, red, NIR; 0..1) are typical values for early October in Hokkaido: a still green
mixed forest with the first autumn colours on the hills; ripe rice, harvested stubble and
ploughed or dry bare fields on the valley floors; asphalt and gravel roads; turbid rivers with
gravel bars; villages with varied roofs; and forest clear-cuts on the hills. Bare fields,
gravel bars, gravel forest roads and clear-cuts are deliberate look-alikes of landslide scars
(low NDVI, bright soil): only their shape, context and slope tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from landslip.synthetic.noise import cell_hash, coarse_field, fbm, perlin
from landslip.synthetic.terrain import TerrainBlock

__all__ = [
    "AUTUMN",
    "CLASS_NAMES",
    "LANDSLIDE",
    "SPECTRA",
    "SUMMER",
    "LandslideAttrs",
    "Phenology",
    "render_landcover",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

CLASS_NAMES: tuple[str, ...] = (
    "none", "forest", "grass", "crop", "stubble", "bare_soil", "road", "gravel", "roof",
    "water", "clearcut", "landslide",
)
"""Land-cover class names; the index is the class code."""
(FOREST, GRASS, CROP, STUBBLE, BARE, ROAD, GRAVEL, ROOF, WATER, CLEARCUT,
 LANDSLIDE) = range(1, 12)

# Surface reflectance (blue, green, red, NIR), typical library values.
SPECTRA: dict[str, tuple[float, float, float, float]] = {
    "deciduous": (0.030, 0.065, 0.040, 0.360),
    "conifer": (0.022, 0.045, 0.028, 0.230),
    "autumn": (0.040, 0.075, 0.090, 0.290),
    "grass": (0.040, 0.085, 0.060, 0.330),
    "crop": (0.055, 0.095, 0.100, 0.300),
    "stubble": (0.075, 0.105, 0.130, 0.230),
    "bare_dark": (0.060, 0.080, 0.100, 0.150),
    "bare_bright": (0.100, 0.140, 0.180, 0.240),
    "asphalt": (0.080, 0.090, 0.100, 0.120),
    "gravel": (0.130, 0.150, 0.170, 0.210),
    "water": (0.060, 0.080, 0.075, 0.045),
    "soil": (0.110, 0.155, 0.205, 0.270),  # exposed pumice soil of the 2018 scars
    "debris": (0.040, 0.050, 0.050, 0.120),
}
_ROOFS = np.array([
    (0.18, 0.19, 0.20, 0.22),  # grey
    (0.10, 0.12, 0.16, 0.20),  # brown/red metal
    (0.12, 0.14, 0.11, 0.12),  # blue-green metal
    (0.33, 0.34, 0.35, 0.37),  # white
    (0.06, 0.06, 0.06, 0.07),  # dark
], dtype=np.float32)

_SALT = {"flood": 20, "parcel": 21, "parcel2": 22, "settle": 23, "house": 24, "house2": 25,
         "bar": 26, "road": 27, "cut": 28, "cut2": 29, "mix": 30, "autumn": 31, "crown": 32,
         "crown2": 33, "tex": 34, "rw": 35, "slide_tex": 36, "debris": 37}


@dataclass(frozen=True)
class LandslideAttrs:
    """Per-landslide appearance, indexed by landslide id (index 0 unused).

    Attributes:
        brightness: Soil brightness factor (1 = the ``soil`` spectrum), float32 (N + 1,).
        reveg_px: Width of the partly revegetated rim in PAN pixels, float32 (N + 1,).
        reveg_strength: Vegetation cover at the very edge (0..1), float32 (N + 1,).
    """

    brightness: F32
    reveg_px: F32
    reveg_strength: F32


@dataclass(frozen=True)
class Phenology:
    """The season's state of the vegetation (the land itself does not change).

    Attributes:
        autumn: Factor on the share of autumn colours in the forest (1: early October, the
            post-event scene; 0: summer).
        harvested: Stubble and dark bare parcels are harvested (True, October); in summer
            (False) they are still green crop. Bright bare (fallow) parcels are bare in both.
        vigour: Factor on the near-infrared reflectance of forest, grass and crop (leaf area).
    """

    autumn: float = 1.0
    harvested: bool = True
    vigour: float = 1.0


AUTUMN = Phenology()
"""Early October 2018, the post-event acquisition."""

SUMMER = Phenology(autumn=0.0, harvested=False, vigour=1.08)
"""Mid-August, a pre-event acquisition: no autumn colours, crops not yet harvested."""


def _spec(name: str) -> F32:
    return np.array(SPECTRA[name], dtype=np.float32)[:, None, None]


def _rotated(x: F64, y: F64, angle: float) -> tuple[F64, F64]:
    c, s = np.cos(angle), np.sin(angle)
    return x * c - y * s, x * s + y * c


def render_landcover(
    xs: F64,
    ys: F64,
    terrain: TerrainBlock,
    landslide_id: npt.NDArray[np.int32],
    attrs: LandslideAttrs,
    seed: int,
    phenology: Phenology = AUTUMN,
) -> tuple[U8, F32]:
    """Classify a block and give its surface reflectance.

    The classes are painted in layers, each over the previous ones: forest, clear-cuts,
    fields, settlements, roads, rivers, landslide scars.

    Args:
        xs: Local x of the pixel centres, metres, shape (W,).
        ys: Local y of the pixel centres, metres (north up), shape (H,).
        terrain: Terrain of the block.
        landslide_id: Landslide id per pixel (0 = none), int32 (H, W), rasterized from the
            polygons.
        attrs: Per-landslide appearance.
        seed: Scene seed.
        phenology: The season (default :data:`AUTUMN`, the post-event date).

    Returns:
        (class codes uint8 (H, W) indexing :data:`CLASS_NAMES`,
        surface reflectance float32 (4, H, W) in band order blue, green, red, nir).
    """
    c = _BlockFrame.of(xs, ys, terrain.valley.shape, seed)
    cls = np.full((c.h, c.w), FOREST, dtype=np.uint8)
    refl = np.empty((4, c.h, c.w), dtype=np.float32)
    _paint_forest(c, refl, phenology.autumn)
    _paint_clearcuts(c, terrain, cls, refl)
    flood = _paint_fields(c, terrain, cls, refl, phenology.harvested)
    _paint_settlements(c, terrain, cls, refl)
    _paint_roads(c, terrain, flood, cls, refl)
    water = _paint_water(c, terrain, cls, refl)
    if phenology.vigour != 1.0:
        green = np.isin(cls, (FOREST, GRASS, CROP))
        refl[3, green] *= np.float32(phenology.vigour)
    _paint_landslides(c, landslide_id, attrs, water, cls, refl)
    return cls, refl


@dataclass(frozen=True)
class _BlockFrame:
    """Pixel-centre coordinates of a block, in the local frame and in the rotated field grid.

    Attributes:
        X: Local x, metres, float64 (1, W).
        Y: Local y, metres, float64 (H, 1).
        U: x rotated by the seed's field-grid angle, float64 (H, W).
        V: y rotated likewise, float64 (H, W).
        x0: Left edge of the block, metres.
        y0: Top edge of the block, metres.
        res: Pixel size, metres.
        h: Rows.
        w: Columns.
        seed: Scene seed.
    """

    X: F64
    Y: F64
    U: F64
    V: F64
    x0: float
    y0: float
    res: float
    h: int
    w: int
    seed: int

    @classmethod
    def of(cls, xs: F64, ys: F64, shape: tuple[int, ...], seed: int) -> _BlockFrame:
        """The frame of pixel centres ``xs`` (W,) and ``ys`` (H,) for ``seed``."""
        X = xs[None, :]
        Y = ys[:, None]
        res = float(abs(xs[1] - xs[0])) if len(xs) > 1 else 1.5
        angle = 0.25 + 0.5 * float(cell_hash(np.array(seed), np.array(0), seed, 99))
        U, V = _rotated(X, Y, angle)
        return cls(X=X, Y=Y, U=U, V=V, x0=float(xs[0] - res / 2), y0=float(ys[0] + res / 2),
                   res=res, h=int(shape[0]), w=int(shape[1]), seed=seed)

    def coarse(self, salt: str, wl: float, octaves: int = 2, step: float = 12.0) -> F32:
        """Fractal noise of wavelength ``wl`` metres, sampled every ``step`` metres."""
        seed = self.seed
        return coarse_field(lambda a, b: fbm(a, b, seed, _SALT[salt], wl, octaves),
                            self.x0, self.y0, self.res, self.h, self.w, step)

    def perlin(self, scale: float, salt: str) -> F32:
        """Perlin noise of the pixel centres at ``scale`` metres."""
        return perlin(self.X / scale, self.Y / scale, self.seed, _SALT[salt])


def _paint(cls: U8, refl: F32, mask: npt.NDArray[np.bool_], spectrum: str, code: int) -> None:
    """Give the pixels of ``mask`` the class ``code`` and the reflectance ``spectrum``."""
    refl[:, mask] = np.broadcast_to(_spec(spectrum), refl.shape)[:, mask]
    cls[mask] = code


def _paint_forest(c: _BlockFrame, refl: F32, autumn_factor: float = 1.0) -> None:
    """Hills: deciduous/conifer mix with autumn colours, crown texture and shaded gaps."""
    mix = 1.0 / (1.0 + np.exp(-6.0 * c.coarse("mix", 260.0)))
    autumn = np.clip(c.coarse("autumn", 180.0) * 2.0, 0.0, 0.45)
    if autumn_factor != 1.0:
        autumn = autumn * np.float32(autumn_factor)
    forest = _spec("deciduous") * mix + _spec("conifer") * (1 - mix)
    forest = forest * (1 - autumn) + _spec("autumn") * autumn
    crown = c.perlin(4.5, "crown") + 0.5 * c.perlin(2.0, "crown2")
    refl[:] = forest * (1.0 + 0.22 * crown)[None]
    gaps = crown < -0.75  # shaded gaps between crowns
    refl[:, gaps] *= 0.6


def _paint_clearcuts(c: _BlockFrame, terrain: TerrainBlock, cls: U8, refl: F32) -> None:
    """Clear-cuts on the hills: young plantation with bare soil between the rows."""
    ci = np.floor(c.U / 140.0).astype(np.int64)
    cj = np.floor(c.V / 110.0).astype(np.int64)
    cut = (cell_hash(ci, cj, c.seed, _SALT["cut"]) < 0.03) & (terrain.valley > 0.5)
    if cut.any():
        soil_frac = 0.25 + 0.5 * cell_hash(ci, cj, c.seed, _SALT["cut2"])
        tex = 0.5 + 0.5 * c.perlin(6.0, "tex")
        sf = np.clip(soil_frac + 0.4 * (tex - 0.5), 0, 1)
        cc = _spec("grass") * (1 - sf) + _spec("bare_bright") * sf
        refl[:, cut] = cc[:, cut]
        cls[cut] = CLEARCUT


def _paint_fields(c: _BlockFrame, terrain: TerrainBlock, cls: U8, refl: F32,
                  harvested: bool = True) -> npt.NDArray[np.bool_]:
    """Valley floor: agricultural parcels with grass edges; returns the flood plain mask.

    Before the harvest (``harvested`` False) the stubble and dark bare parcels are crop.
    """
    flood: npt.NDArray[np.bool_] = terrain.valley < (0.3 + 0.5 * c.coarse("flood", 300.0))
    pi = np.floor(c.U / 70.0).astype(np.int64)
    pj = np.floor(c.V / 130.0).astype(np.int64)
    ph = cell_hash(pi, pj, c.seed, _SALT["parcel"])
    pb = 0.85 + 0.3 * cell_hash(pi, pj, c.seed, _SALT["parcel2"])
    edge = ((c.U - pi * 70.0) < 2.0) | ((c.V - pj * 130.0) < 2.0)
    field_tex = 1.0 + 0.06 * c.perlin(8.0, "tex")
    parcels: tuple[tuple[float, float, str, int], ...] = (
        (0.0, 0.33, "crop", CROP), (0.33, 0.58, "stubble", STUBBLE),
        (0.58, 0.68, "bare_dark", BARE), (0.68, 0.78, "bare_bright", BARE),
        (0.78, 1.01, "grass", GRASS))
    if not harvested:
        parcels = ((0.0, 0.68, "crop", CROP), *parcels[3:])
    for lo, hi, name, code in parcels:
        m = flood & (ph >= lo) & (ph < hi) & ~edge
        if m.any():
            refl[:, m] = (_spec(name) * (pb * field_tex)[None])[:, m]
            cls[m] = code
    _paint(cls, refl, flood & edge, "grass", GRASS)
    return flood


def _paint_settlements(c: _BlockFrame, terrain: TerrainBlock, cls: U8, refl: F32) -> None:
    """Settlements: houses on a hashed grid, gardens and paved yards."""
    built = (c.coarse("settle", 900.0) > 0.25) & (terrain.valley < 0.6)
    if not built.any():
        return
    hi_ = np.floor(c.U / 22.0).astype(np.int64)
    hj = np.floor(c.V / 22.0).astype(np.int64)
    hh = cell_hash(hi_, hj, c.seed, _SALT["house"])
    h2 = cell_hash(hi_, hj, c.seed, _SALT["house2"])
    lu = c.U - hi_ * 22.0 - 11.0
    lv = c.V - hj * 22.0 - 11.0
    house = built & (hh < 0.6) & (np.abs(lu) < 4.0 + 3.0 * h2) & (np.abs(lv) < 3.5 + 2.5 * hh)
    yard = built & ~house & (h2 < 0.45)
    garden = built & ~house & ~yard
    roof = _ROOFS[np.minimum((h2 * len(_ROOFS)).astype(np.intp), len(_ROOFS) - 1)]
    refl[:, house] = roof[house].T
    cls[house] = ROOF
    _paint(cls, refl, yard, "asphalt", ROAD)
    _paint(cls, refl, garden, "grass", GRASS)


def _paint_roads(c: _BlockFrame, terrain: TerrainBlock, flood: npt.NDArray[np.bool_],
                 cls: U8, refl: F32) -> None:
    """Roads: a valley road beside the river and a network following noise contours."""
    seed = c.seed

    def road_noise(a: F64, b: F64) -> F32:
        return fbm(a, b, seed, _SALT["road"], 1700.0, octaves=2)

    def road_grad(a: F64, b: F64) -> F32:
        gx = road_noise(a + 3.0, b) - road_noise(a - 3.0, b)
        gy = road_noise(a, b + 3.0) - road_noise(a, b - 3.0)
        return np.asarray(np.hypot(gx, gy) / 6.0, dtype=np.float32)

    rn = coarse_field(road_noise, c.x0, c.y0, c.res, c.h, c.w, 6.0)
    rg = coarse_field(road_grad, c.x0, c.y0, c.res, c.h, c.w, 6.0)
    rdist = np.abs(rn) / np.maximum(rg, 1e-7)
    asphalt = (np.abs(terrain.river_distance - 60.0) < 3.0) & flood
    asphalt |= (rdist < 3.0) & (terrain.valley < 0.5)
    forest_road = (rdist < 2.0) & (terrain.valley >= 0.5) & (terrain.slope_deg < 22.0)
    _paint(cls, refl, asphalt, "asphalt", ROAD)
    _paint(cls, refl, forest_road, "gravel", GRAVEL)


def _paint_water(c: _BlockFrame, terrain: TerrainBlock, cls: U8,
                 refl: F32) -> npt.NDArray[np.bool_]:
    """Rivers and their gravel bars; returns the water mask."""
    d = terrain.river_distance
    rw = 5.0 + 4.0 * c.coarse("rw", 500.0)
    water: npt.NDArray[np.bool_] = d < rw
    bar = (~water) & (d < rw + 16.0) & (c.coarse("bar", 140.0, octaves=2, step=6.0) > 0.12)
    _paint(cls, refl, bar, "gravel", GRAVEL)
    _paint(cls, refl, water, "water", WATER)
    return water


def _paint_landslides(c: _BlockFrame, landslide_id: npt.NDArray[np.int32],
                      attrs: LandslideAttrs, water: npt.NDArray[np.bool_], cls: U8,
                      refl: F32) -> None:
    """Landslide scars: bright soil, debris, partly revegetated rims (not over water)."""
    from scipy.ndimage import distance_transform_edt

    slide = (landslide_id > 0) & ~water
    if not slide.any():
        return
    ids = landslide_id[slide]
    inside = distance_transform_edt(landslide_id > 0).astype(np.float32)[slide]
    rim = np.clip(1.0 - (inside - 0.5) / np.maximum(attrs.reveg_px[ids], 0.5), 0.0, 1.0)
    veg = attrs.reveg_strength[ids] * rim
    tex = 1.0 + 0.12 * c.perlin(3.0, "slide_tex")[slide]
    soil = np.array(SPECTRA["soil"], np.float32)[:, None] * (attrs.brightness[ids] * tex)
    debris = np.clip(c.perlin(5.0, "debris")[slide] - 0.35, 0, 1)
    soil = soil * (1 - debris) + np.array(SPECTRA["debris"], np.float32)[:, None] * debris
    grass = np.array(SPECTRA["grass"], np.float32)[:, None]
    refl[:, slide] = soil * (1 - veg) + grass * veg
    cls[slide] = LANDSLIDE
