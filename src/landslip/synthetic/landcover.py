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

__all__ = ["CLASS_NAMES", "LANDSLIDE", "SPECTRA", "LandslideAttrs", "render_landcover"]

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
) -> tuple[U8, F32]:
    """Classify a block and give its surface reflectance.

    Args:
        xs: Local x of the pixel centres, metres, shape (W,).
        ys: Local y of the pixel centres, metres (north up), shape (H,).
        terrain: Terrain of the block.
        landslide_id: Landslide id per pixel (0 = none), int32 (H, W), rasterized from the
            polygons.
        attrs: Per-landslide appearance.
        seed: Scene seed.

    Returns:
        (class codes uint8 (H, W) indexing :data:`CLASS_NAMES`,
        surface reflectance float32 (4, H, W) in band order blue, green, red, nir).
    """
    from scipy.ndimage import distance_transform_edt

    h, w = terrain.valley.shape
    X = xs[None, :]
    Y = ys[:, None]
    res = float(abs(xs[1] - xs[0])) if len(xs) > 1 else 1.5
    x0 = float(xs[0] - res / 2)
    y0 = float(ys[0] + res / 2)

    def coarse(salt: str, wl: float, octaves: int = 2, step: float = 12.0) -> F32:
        return coarse_field(lambda a, b: fbm(a, b, seed, _SALT[salt], wl, octaves),
                            x0, y0, res, h, w, step)

    angle = 0.25 + 0.5 * float(cell_hash(np.array(seed), np.array(0), seed, 99))
    U, V = _rotated(X, Y, angle)
    cls = np.full((h, w), FOREST, dtype=np.uint8)
    refl = np.empty((4, h, w), dtype=np.float32)

    # --- hills: forest (deciduous/conifer mix with autumn colours and crown texture) -------
    mix = 1.0 / (1.0 + np.exp(-6.0 * coarse("mix", 260.0)))
    autumn = np.clip(coarse("autumn", 180.0) * 2.0, 0.0, 0.45)
    forest = _spec("deciduous") * mix + _spec("conifer") * (1 - mix)
    forest = forest * (1 - autumn) + _spec("autumn") * autumn
    crown = perlin(X / 4.5, Y / 4.5, seed, _SALT["crown"]) + 0.5 * perlin(
        X / 2.0, Y / 2.0, seed, _SALT["crown2"])
    refl[:] = forest * (1.0 + 0.22 * crown)[None]
    gaps = crown < -0.75  # shaded gaps between crowns
    refl[:, gaps] *= 0.6

    # --- clear-cuts on the hills: young plantation with bare soil between the rows ----------
    ci = np.floor(U / 140.0).astype(np.int64)
    cj = np.floor(V / 110.0).astype(np.int64)
    cut = (cell_hash(ci, cj, seed, _SALT["cut"]) < 0.03) & (terrain.valley > 0.5)
    if cut.any():
        soil_frac = 0.25 + 0.5 * cell_hash(ci, cj, seed, _SALT["cut2"])
        tex = 0.5 + 0.5 * perlin(X / 6.0, Y / 6.0, seed, _SALT["tex"])
        sf = np.clip(soil_frac + 0.4 * (tex - 0.5), 0, 1)
        cc = _spec("grass") * (1 - sf) + _spec("bare_bright") * sf
        refl[:, cut] = cc[:, cut]
        cls[cut] = CLEARCUT

    # --- valley floor: agricultural parcels ------------------------------------------------
    flood = terrain.valley < (0.3 + 0.5 * coarse("flood", 300.0))
    pi = np.floor(U / 70.0).astype(np.int64)
    pj = np.floor(V / 130.0).astype(np.int64)
    ph = cell_hash(pi, pj, seed, _SALT["parcel"])
    pb = 0.85 + 0.3 * cell_hash(pi, pj, seed, _SALT["parcel2"])
    edge = ((U - pi * 70.0) < 2.0) | ((V - pj * 130.0) < 2.0)
    field_tex = 1.0 + 0.06 * perlin(X / 8.0, Y / 8.0, seed, _SALT["tex"])
    for lo, hi, name, code in ((0.0, 0.33, "crop", CROP), (0.33, 0.58, "stubble", STUBBLE),
                               (0.58, 0.68, "bare_dark", BARE), (0.68, 0.78, "bare_bright", BARE),
                               (0.78, 1.01, "grass", GRASS)):
        m = flood & (ph >= lo) & (ph < hi) & ~edge
        if m.any():
            refl[:, m] = (_spec(name) * (pb * field_tex)[None])[:, m]
            cls[m] = code
    m = flood & edge
    refl[:, m] = np.broadcast_to(_spec("grass"), refl.shape)[:, m]
    cls[m] = GRASS

    # --- settlements: houses on a hashed grid, gardens and paved yards ----------------------
    built = (coarse("settle", 900.0) > 0.25) & (terrain.valley < 0.6)
    if built.any():
        hi_ = np.floor(U / 22.0).astype(np.int64)
        hj = np.floor(V / 22.0).astype(np.int64)
        hh = cell_hash(hi_, hj, seed, _SALT["house"])
        h2 = cell_hash(hi_, hj, seed, _SALT["house2"])
        lu = U - hi_ * 22.0 - 11.0
        lv = V - hj * 22.0 - 11.0
        house = built & (hh < 0.6) & (np.abs(lu) < 4.0 + 3.0 * h2) & (np.abs(lv) < 3.5 + 2.5 * hh)
        yard = built & ~house & (h2 < 0.45)
        garden = built & ~house & ~yard
        roof = _ROOFS[np.minimum((h2 * len(_ROOFS)).astype(np.intp), len(_ROOFS) - 1)]
        refl[:, house] = roof[house].T
        cls[house] = ROOF
        refl[:, yard] = np.broadcast_to(_spec("asphalt"), refl.shape)[:, yard]
        cls[yard] = ROAD
        refl[:, garden] = np.broadcast_to(_spec("grass"), refl.shape)[:, garden]
        cls[garden] = GRASS

    # --- roads: a valley road beside the river and a network following noise contours -------
    def road_noise(a: F64, b: F64) -> F32:
        return fbm(a, b, seed, _SALT["road"], 1700.0, octaves=2)

    def road_grad(a: F64, b: F64) -> F32:
        gx = road_noise(a + 3.0, b) - road_noise(a - 3.0, b)
        gy = road_noise(a, b + 3.0) - road_noise(a, b - 3.0)
        return np.asarray(np.hypot(gx, gy) / 6.0, dtype=np.float32)

    rn = coarse_field(road_noise, x0, y0, res, h, w, 6.0)
    rg = coarse_field(road_grad, x0, y0, res, h, w, 6.0)
    rdist = np.abs(rn) / np.maximum(rg, 1e-7)
    d = terrain.river_distance
    asphalt = (np.abs(d - 60.0) < 3.0) & flood
    asphalt |= (rdist < 3.0) & (terrain.valley < 0.5)
    forest_road = (rdist < 2.0) & (terrain.valley >= 0.5) & (terrain.slope_deg < 22.0)
    refl[:, asphalt] = np.broadcast_to(_spec("asphalt"), refl.shape)[:, asphalt]
    cls[asphalt] = ROAD
    refl[:, forest_road] = np.broadcast_to(_spec("gravel"), refl.shape)[:, forest_road]
    cls[forest_road] = GRAVEL

    # --- rivers and gravel bars ------------------------------------------------------------
    rw = 5.0 + 4.0 * coarse("rw", 500.0)
    water = d < rw
    bar = (~water) & (d < rw + 16.0) & (coarse("bar", 140.0, octaves=2, step=6.0) > 0.12)
    refl[:, bar] = np.broadcast_to(_spec("gravel"), refl.shape)[:, bar]
    cls[bar] = GRAVEL
    refl[:, water] = np.broadcast_to(_spec("water"), refl.shape)[:, water]
    cls[water] = WATER

    # --- landslide scars: bright soil, debris, partly revegetated rims ----------------------
    slide = (landslide_id > 0) & ~water
    if slide.any():
        ids = landslide_id[slide]
        inside = distance_transform_edt(landslide_id > 0).astype(np.float32)[slide]
        rim = np.clip(1.0 - (inside - 0.5) / np.maximum(attrs.reveg_px[ids], 0.5), 0.0, 1.0)
        veg = attrs.reveg_strength[ids] * rim
        tex = 1.0 + 0.12 * perlin(X / 3.0, Y / 3.0, seed, _SALT["slide_tex"])[slide]
        soil = np.array(SPECTRA["soil"], np.float32)[:, None] * (attrs.brightness[ids] * tex)
        debris = np.clip(perlin(X / 5.0, Y / 5.0, seed, _SALT["debris"])[slide] - 0.35, 0, 1)
        soil = soil * (1 - debris) + np.array(SPECTRA["debris"], np.float32)[:, None] * debris
        grass = np.array(SPECTRA["grass"], np.float32)[:, None]
        refl[:, slide] = soil * (1 - veg) + grass * veg
        cls[slide] = LANDSLIDE
    return cls, refl
