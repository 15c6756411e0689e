"""Make a synthetic SPOT-7-like scene with known landslide truth, block by block.

:func:`make_scene` writes, into one folder:

* ``pan.tif``: 1 band "pan", 1.5 m, uint16 12-bit DNs, EPSG:32654 (UTM 54N);
* ``ms.tif``: 4 bands blue, green, red, nir, 6 m, uint16, the same extent;
* ``truth.tif``: uint8 0/1 on the PAN grid, the rasterization of the polygons;
* ``landslides.geojson``: the landslide polygons in EPSG:4326 (lon/lat), like the GSI data;
* ``dem.tif`` (optional): float32 elevation in metres on the PAN grid, band ``dem``;
* ``pre_pan.tif``, ``pre_ms.tif`` (optional): a pre-event scene of the same ground, the same
  terrain and land cover without the scars, seen on another date (:data:`PRE_ACQUISITION`:
  another sun position, summer phenology) with a small co-registration offset
  (:data:`PRE_OFFSET_M`), on the same grids as ``pan.tif`` and ``ms.tif``;
* ``preview.png``: true and false colour with the polygons drawn;
* ``scene.json``: parameters, seed, landslide count and fraction, per-class NDVI, shadows.

The scene is centred on 42.7 N, 141.9 E (Atsuma, Hokkaido). All content is a function of map
coordinates and the seed, so the scene is generated in tiles of 1024 x 1024 PAN pixels with a
halo (for the PSF, slopes and scar rims) and a sun-ward extension (for cast shadows), and
written window by window: memory stays bounded whatever the scene size. Only the landslide
polygons (a few MB even for 16384 x 16384 pixels) are held for the whole scene.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError
from landslip.grid import Grid, Window, iter_clipped_tiles
from landslip.io.atomic import atomic_path, write_json_atomic
from landslip.io.cog import CONTINUOUS, LABELS
from landslip.io.gdal import gdal_env
from landslip.io.raster import RasterWriter
from landslip.progress import track
from landslip.synthetic.landcover import (
    AUTUMN,
    CLASS_NAMES,
    SUMMER,
    LandslideAttrs,
    Phenology,
    render_landcover,
)
from landslip.synthetic.landslides import LandslideConfig, generate_landslides
from landslip.synthetic.sensor import SensorModel
from landslip.synthetic.solar import SPOT7_ATSUMA_TIME, SunPosition, solar_position
from landslip.synthetic.terrain import TerrainModel, cast_shadow_lit

__all__ = [
    "MAX_SIZE",
    "MIN_SIZE",
    "PRE_ACQUISITION",
    "PRE_OFFSET_M",
    "SceneResult",
    "make_scene",
    "scene_grids",
]

log = logging.getLogger(__name__)

PAN_RES = 1.5
MS_RES = 6.0
RATIO = 4
MIN_SIZE = 256
MAX_SIZE = 65536
TILE = 1024
HALO = 12
CRS_EPSG = 32654
CENTRE_LONLAT = (141.9, 42.7)
BANDS = ("blue", "green", "red", "nir")
GDAL_CACHE_MB = 128
"""GDAL block cache while writing the scene, MiB."""
PRE_ACQUISITION = datetime(2018, 8, 20, 1, 2, tzinfo=UTC)
"""UTC time of the pre-event scene: 17 days before the 6 September 2018 earthquake, at
SPOT-7's 10:30 local solar time (sun higher and further east than on 4 October)."""
PRE_OFFSET_M = (1.1, -0.7)
"""Co-registration offset of the pre-event scene, metres (east, north): its pixel at a given
map position shows the ground that lies this far away (0.7 and 0.5 PAN pixels)."""


@dataclass(frozen=True)
class SceneResult:
    """What :func:`make_scene` wrote and measured.

    Attributes:
        out_dir: The output folder.
        pan, ms, truth, landslides, preview, scene_json: Paths of the files written.
        dem: Path of the DEM, or None when not requested.
        pre_pan: Path of the pre-event PAN, or None when not requested.
        pre_ms: Path of the pre-event MS, or None when not requested.
        pan_grid: Grid of pan.tif and truth.tif (EPSG:32654, 1.5 m).
        ms_grid: Grid of ms.tif (EPSG:32654, 6 m), same extent.
        seed: The seed.
        landslide_count: Number of landslide polygons.
        landslide_fraction: Share of PAN pixels that are landslide in truth.tif.
        class_ndvi: Mean apparent NDVI per land-cover class (at-sensor signal, 1.5 m).
        class_fraction: Share of pixels per land-cover class.
        class_slope_deg: Mean terrain slope per land-cover class, degrees.
        landslide_shaded_share: Share of landslide pixels in shade (cast or self shadow, or
            direct light below 35 % of flat ground).
        landslide_cast_shadow_share: Share of landslide pixels in cast shadow.
        seconds: Wall time.
    """

    out_dir: Path
    pan: Path
    ms: Path
    truth: Path
    landslides: Path
    preview: Path | None
    scene_json: Path
    dem: Path | None
    pan_grid: Grid
    ms_grid: Grid
    seed: int
    landslide_count: int
    landslide_fraction: float
    class_ndvi: dict[str, float] = field(default_factory=dict)
    class_fraction: dict[str, float] = field(default_factory=dict)
    class_slope_deg: dict[str, float] = field(default_factory=dict)
    landslide_shaded_share: float = 0.0
    landslide_cast_shadow_share: float = 0.0
    seconds: float = 0.0
    pre_pan: Path | None = None
    pre_ms: Path | None = None


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise InputError(f"scene size must be an integer number of PAN pixels, got {size!r}")
    if size < MIN_SIZE or size > MAX_SIZE or size % RATIO:
        raise InputError(
            f"scene size must be a multiple of {RATIO} between {MIN_SIZE} and {MAX_SIZE} PAN "
            f"pixels (so that the 6 m MS grid covers exactly the 1.5 m PAN grid), got {size}; "
            f"try {max(MIN_SIZE, min(MAX_SIZE, size - size % RATIO))}"
        )


def scene_grids(size: int) -> tuple[Grid, Grid, tuple[float, float]]:
    """PAN and MS grids of a scene of ``size`` PAN pixels centred near 42.7 N, 141.9 E.

    Returns:
        (PAN grid 1.5 m, MS grid 6 m, reference point (E, N) of the local frame in UTM
        metres). The corner and the reference point lie on the 6 m lattice.
    """
    from pyproj import Transformer
    from rasterio.crs import CRS

    _check_size(size)
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{CRS_EPSG}", always_xy=True)
    cx, cy = to_utm.transform(*CENTRE_LONLAT)
    ref = (round(cx / MS_RES) * MS_RES, round(cy / MS_RES) * MS_RES)
    half = size * PAN_RES / 2
    left = ref[0] - round(half / MS_RES) * MS_RES
    top = ref[1] + round(half / MS_RES) * MS_RES
    crs = CRS.from_epsg(CRS_EPSG)
    pan = Grid.from_bounds(crs, left, top, PAN_RES, size, size)
    ms = Grid.from_bounds(crs, left, top, MS_RES, size // RATIO, size // RATIO)
    return pan, ms, (float(ref[0]), float(ref[1]))


def _landslide_attrs(n: int, seed: int) -> LandslideAttrs:
    rng = np.random.default_rng([seed, 555])
    bright = np.ones(n + 1, np.float32)
    reveg = np.zeros(n + 1, np.float32)
    strength = np.zeros(n + 1, np.float32)
    bright[1:] = rng.uniform(0.75, 1.25, n)
    has_rim = rng.random(n) < 0.6
    reveg[1:] = np.where(has_rim, rng.uniform(1.0, 4.0, n), 0.0)
    strength[1:] = rng.uniform(0.3, 0.85, n)
    return LandslideAttrs(brightness=bright, reveg_px=reveg, reveg_strength=strength)


@dataclass(frozen=True)
class _SceneSetup:
    """What every tile of a scene is rendered from (all of it fixed by the seed and size).

    Attributes:
        seed: Scene seed.
        pan_grid: PAN grid (1.5 m), also the grid of truth.tif and dem.tif.
        ms_grid: MS grid (6 m).
        ref: Origin (E, N) of the local frame, UTM metres.
        sun: Sun position at the acquisition.
        terrain: Terrain model.
        sensor: Sensor model.
        polys: Landslide polygons in UTM metres; polygon i has landslide id i + 1.
        attrs: Per-landslide appearance.
        tree: Spatial index of ``polys`` (``shapely.STRtree``), None without landslides
            (and for the pre-event scene, which has none).
        offset: Shift (east, north) in metres of the ground seen, for the co-registration
            offset of the pre-event scene.
        phenology: The season of the vegetation.
        noise_salt: Salt of the sensor-noise generator (another date, other noise).
    """

    seed: int
    pan_grid: Grid
    ms_grid: Grid
    ref: tuple[float, float]
    sun: SunPosition
    terrain: TerrainModel
    sensor: SensorModel
    polys: list[Any]
    attrs: LandslideAttrs
    tree: Any
    offset: tuple[float, float] = (0.0, 0.0)
    phenology: Phenology = AUTUMN
    noise_salt: int = 77

    @property
    def sin_el(self) -> float:
        """Sine of the sun elevation."""
        return math.sin(math.radians(self.sun.elevation_deg))


@dataclass(frozen=True)
class _Tile:
    """One rendered tile: its pixels for the files and the core arrays for the statistics.

    Attributes:
        window: The tile on the PAN grid.
        pan: PAN DNs, uint16 (h, w).
        ms: MS DNs, uint16 (4, h / 4, w / 4).
        truth: Landslide mask, uint8 (h, w) of 0 and 1.
        height: Terrain elevation, metres, float32 (h, w).
        cls: Land-cover class codes, uint8 (h, w).
        signal: At-sensor signal, float32 (4, h, w).
        slope_deg: Terrain slope, degrees, float32 (h, w).
        direct: Direct-light factor (cos incidence times lit), float32 (h, w).
        lit: Cast-shadow light factor (0 shadow .. 1 lit), float32 (h, w).
    """

    window: Window
    pan: npt.NDArray[np.uint16]
    ms: npt.NDArray[np.uint16]
    truth: npt.NDArray[np.uint8]
    height: npt.NDArray[np.float32]
    cls: npt.NDArray[np.uint8]
    signal: npt.NDArray[np.float32]
    slope_deg: npt.NDArray[np.float32]
    direct: npt.NDArray[np.float32]
    lit: npt.NDArray[np.float32]


@dataclass
class _SceneStats:
    """Running sums over the tile cores: per land-cover class and over landslide pixels."""

    cls_count: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(len(CLASS_NAMES), np.int64))
    cls_ndvi: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(len(CLASS_NAMES), np.float64))
    cls_slope: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(len(CLASS_NAMES), np.float64))
    slide_px: int = 0
    slide_shaded: int = 0
    slide_cast: int = 0

    def add(self, tile: _Tile, sin_el: float) -> None:
        """Add the sums of one tile."""
        n_cls = len(CLASS_NAMES)
        c = tile.cls.ravel()
        sig = tile.signal
        ndvi = ((sig[3] - sig[2]) / np.maximum(sig[3] + sig[2], 1e-6)).ravel()
        self.cls_count += np.bincount(c, minlength=n_cls)
        self.cls_ndvi += np.bincount(c, weights=ndvi, minlength=n_cls)
        self.cls_slope += np.bincount(c, weights=tile.slope_deg.ravel(), minlength=n_cls)
        s = tile.truth.astype(bool)
        self.slide_px += int(s.sum())
        rel = (tile.direct / sin_el)[s]
        self.slide_shaded += int((rel < 0.35).sum())
        self.slide_cast += int((tile.lit[s] < 0.5).sum())

    def per_class(self, total_px: int) -> dict[str, dict[str, float]]:
        """Share of pixels, mean NDVI and mean slope (degrees) of each class present."""
        return {CLASS_NAMES[i]: {"fraction": float(self.cls_count[i] / total_px),
                                 "mean_ndvi": float(self.cls_ndvi[i] / self.cls_count[i]),
                                 "mean_slope_deg": float(self.cls_slope[i] / self.cls_count[i])}
                for i in range(1, len(CLASS_NAMES)) if self.cls_count[i]}

    def shares(self) -> tuple[float, float]:
        """(shaded share, cast-shadow share) of the landslide pixels."""
        if not self.slide_px:
            return 0.0, 0.0
        return self.slide_shaded / self.slide_px, self.slide_cast / self.slide_px


def make_scene(
    out_dir: str | Path,
    size: int = 2048,
    seed: int = 0,
    dem: bool = False,
    landslide_fraction: float | None = None,
    fraction_range: tuple[float, float] = (0.02, 0.08),
    preview: bool = True,
    acquisition: datetime = SPOT7_ATSUMA_TIME,
    pre: bool = False,
    pre_acquisition: datetime = PRE_ACQUISITION,
    phenology: Phenology = AUTUMN,
    sensor: SensorModel | None = None,
) -> SceneResult:
    """Generate a synthetic SPOT-7-like scene with landslides and write it to ``out_dir``.

    Args:
        out_dir: Output folder (created when missing); existing scene files are replaced.
        size: Scene width and height in PAN pixels (1.5 m): a multiple of 4, 256..65536.
            The default 2048 is 3.07 km across.
        seed: Seed; the same seed and size give byte-identical files.
        dem: Also write ``dem.tif``.
        landslide_fraction: Share of the scene covered by landslides (default: the middle
            of ``fraction_range``).
        fraction_range: Allowed range of that share.
        preview: Write ``preview.png``.
        acquisition: UTC time of the simulated acquisition (sets the sun position).
        pre: Also write ``pre_pan.tif`` and ``pre_ms.tif``, the pre-event scene.
        pre_acquisition: UTC time of the pre-event scene (its sun position).
        phenology: The season of the vegetation (``AUTUMN``, the post-event date; ``SUMMER``).
        sensor: The sensor response (default :class:`SensorModel`; another one, e.g.
            ``SensorModel().with_response(...)``, with ``acquisition`` and ``phenology`` makes
            a scene of the same kind seen under a real domain shift).

    Returns:
        A :class:`SceneResult` with the paths and the measured figures.

    Raises:
        InputError: For a bad size or landslide fraction.
    """
    t_start = time.perf_counter()
    _check_size(size)
    lo, hi = fraction_range
    ls_config = _landslide_config(fraction_range, landslide_fraction)
    setup = replace(_scene_setup(size, seed, acquisition, ls_config),
                    sensor=sensor or SensorModel(), phenology=phenology)
    pre_setup = _pre_setup(setup, pre_acquisition) if pre else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {"pan": True, "ms": True, "truth": True, "dem": dem, "pre_pan": pre, "pre_ms": pre}
    rasters = {name: out / f"{name}.tif" for name, on in wanted.items() if on}
    stats = _write_rasters(setup, rasters, size, pre_setup)
    geojson = _write_geojson(out / "landslides.geojson", setup.polys, setup.pan_grid)
    preview_path = _write_preview(out, rasters["ms"], setup) if preview else None
    fraction = stats.slide_px / (size * size)
    classes = stats.per_class(size * size)
    shaded, cast = stats.shares()
    files = [*rasters.values(), geojson] + ([preview_path] if preview_path else [])
    seconds = time.perf_counter() - t_start
    meta = _scene_metadata(setup, size, acquisition, ls_config, fraction, classes,
                           (shaded, cast), files, seconds)
    if pre_setup is not None:
        meta["pre"] = _pre_metadata(pre_setup, pre_acquisition)
    scene_json = write_json_atomic(out / "scene.json", meta)
    if not (lo <= fraction <= hi):
        log.warning("landslide fraction %.4f is outside the configured range [%s, %s]",
                    fraction, lo, hi)
    return SceneResult(
        out_dir=out, pan=rasters["pan"], ms=rasters["ms"], truth=rasters["truth"],
        landslides=geojson, preview=preview_path, scene_json=scene_json,
        dem=rasters.get("dem"), pan_grid=setup.pan_grid, ms_grid=setup.ms_grid, seed=seed,
        landslide_count=len(setup.polys), landslide_fraction=fraction,
        class_ndvi={k: v["mean_ndvi"] for k, v in classes.items()},
        class_fraction={k: v["fraction"] for k, v in classes.items()},
        class_slope_deg={k: v["mean_slope_deg"] for k, v in classes.items()},
        landslide_shaded_share=shaded, landslide_cast_shadow_share=cast, seconds=seconds,
        pre_pan=rasters.get("pre_pan"), pre_ms=rasters.get("pre_ms"),
    )


def _landslide_config(fraction_range: tuple[float, float],
                      landslide_fraction: float | None) -> LandslideConfig:
    """The landslide settings: the target share defaults to the middle of the range."""
    lo, hi = fraction_range
    target = (lo + hi) / 2 if landslide_fraction is None else float(landslide_fraction)
    return LandslideConfig(fraction_range=(lo, hi), target_fraction=target)


def _write_preview(out: Path, ms_path: Path, setup: _SceneSetup) -> Path:
    from landslip.synthetic.preview import write_preview

    return write_preview(out / "preview.png", ms_path, setup.polys)


def _scene_setup(size: int, seed: int, acquisition: datetime,
                 ls_config: LandslideConfig) -> _SceneSetup:
    """Grids, sun, models and the landslide polygons of a scene.

    Raises:
        InputError: When the sun is 5 degrees high or less at ``acquisition``.
    """
    from pyproj import Transformer
    from shapely import STRtree
    from shapely.affinity import translate

    pan_grid, ms_grid, ref = scene_grids(size)
    sun = _sun(acquisition)
    terrain = TerrainModel(seed=seed)
    # landslide polygons: drawn in local metres, moved to UTM
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{CRS_EPSG}", always_xy=True)
    ex, ey = to_utm.transform(*ls_config.epicentre_lonlat)
    left, bottom, right, top = pan_grid.bounds
    local_fp = (left - ref[0], bottom - ref[1], right - ref[0], top - ref[1])
    polys_local = generate_landslides(terrain, local_fp, (ex - ref[0], ey - ref[1]), seed,
                                      ls_config)
    polys = [translate(p, ref[0], ref[1]) for p in polys_local]
    return _SceneSetup(seed=seed, pan_grid=pan_grid, ms_grid=ms_grid, ref=ref, sun=sun,
                       terrain=terrain, sensor=SensorModel(), polys=polys,
                       attrs=_landslide_attrs(len(polys), seed),
                       tree=STRtree(polys) if polys else None)


def _sun(acquisition: datetime) -> SunPosition:
    """The sun over the scene centre at ``acquisition``.

    Raises:
        InputError: When the sun is 5 degrees high or less.
    """
    sun = solar_position(CENTRE_LONLAT[1], CENTRE_LONLAT[0], acquisition)
    if sun.elevation_deg <= 5:
        raise InputError(f"the sun is only {sun.elevation_deg:.1f} degrees high at "
                         f"{acquisition.isoformat()}; choose a daytime acquisition")
    return sun


def _pre_setup(setup: _SceneSetup, acquisition: datetime) -> _SceneSetup:
    """The pre-event scene: same ground, no scars, another sun, summer, shifted, other noise."""
    return replace(setup, sun=_sun(acquisition), polys=[], tree=None, offset=PRE_OFFSET_M,
                   phenology=SUMMER, noise_salt=78)


def _pre_metadata(pre: _SceneSetup, acquisition: datetime) -> dict[str, Any]:
    """The ``pre`` block of scene.json."""
    return {"files": ["pre_pan.tif", "pre_ms.tif"], "acquisition_utc": acquisition.isoformat(),
            "sun": {"azimuth_deg": round(pre.sun.azimuth_deg, 3),
                    "elevation_deg": round(pre.sun.elevation_deg, 3)},
            "offset_m": list(pre.offset), "landslides": 0,
            "phenology": {"autumn": pre.phenology.autumn,
                          "harvested": pre.phenology.harvested,
                          "vigour": pre.phenology.vigour}}


def _write_rasters(setup: _SceneSetup, paths: dict[str, Path], size: int,
                   pre: _SceneSetup | None = None) -> _SceneStats:
    """Render the scene tile by tile into the rasters of ``paths`` (pan, ms, truth[, dem]
    [, pre_pan, pre_ms]); ``pre`` renders the pre-event scene's tiles.

    All files are written atomically: on any error none of them is left behind.

    Returns:
        The statistics summed over the tiles.
    """
    tags = {"landslip_synthetic_seed": str(setup.seed), "sensor": "synthetic SPOT-7-like"}
    pan_grid = setup.pan_grid
    specs: dict[str, tuple[Grid, int, str, list[str | None]]] = {
        "pan": (pan_grid, 1, "uint16", ["pan"]),
        "ms": (setup.ms_grid, 4, "uint16", list(BANDS)),
        "truth": (pan_grid, 1, "uint8", ["landslide"]),
        "dem": (pan_grid, 1, "float32", ["dem"]),
        "pre_pan": (pan_grid, 1, "uint16", ["pan"]),
        "pre_ms": (setup.ms_grid, 4, "uint16", list(BANDS)),
    }
    stats = _SceneStats()
    tiles = list(iter_clipped_tiles(size, size, TILE))
    with ExitStack() as stack:
        stack.enter_context(gdal_env(GDAL_CACHE_MB))
        writers = {name: stack.enter_context(RasterWriter(
            path, *specs[name][:3], descriptions=specs[name][3], tags=tags,
            style=LABELS if name == "truth" else CONTINUOUS)) for name, path in paths.items()}
        for win in track(tiles, total=len(tiles), description="synth"):
            tile = _render_tile(setup, win)
            ms_win = Window(win.row_off // RATIO, win.col_off // RATIO, win.height // RATIO,
                            win.width // RATIO)
            writers["pan"].write(tile.pan, win)
            writers["ms"].write(tile.ms, ms_win)
            writers["truth"].write(tile.truth, win)
            if "dem" in writers:
                writers["dem"].write(tile.height, win)
            if pre is not None:
                before = _render_tile(pre, win)
                writers["pre_pan"].write(before.pan, win)
                writers["pre_ms"].write(before.ms, ms_win)
            stats.add(tile, setup.sin_el)
    return stats


def _tile_landslide_ids(setup: _SceneSetup, ext_grid: Grid) -> npt.NDArray[np.int32]:
    """Landslide id per pixel of ``ext_grid`` (0: none), int32 (H, W)."""
    import shapely
    from rasterio.features import rasterize

    ids = np.zeros(ext_grid.shape, np.int32)
    if setup.tree is not None:
        hits = setup.tree.query(shapely.box(*ext_grid.bounds))
        if len(hits):
            ids = rasterize(((setup.polys[i], int(i) + 1) for i in sorted(hits)),
                            out_shape=ids.shape, transform=ext_grid.transform, fill=0,
                            dtype="int32")
    return ids


def _render_tile(setup: _SceneSetup, win: Window) -> _Tile:
    """Render one tile: terrain, land cover and sensor on the tile plus a halo, then the core.

    The sensor noise is drawn from a generator seeded by the seed and the tile origin, so the
    scene does not depend on the order in which tiles are rendered.
    """
    h = HALO
    ref, sensor = setup.ref, setup.sensor
    ext = win.expand(h)
    ext_grid = setup.pan_grid.window_grid(ext)
    x0 = ext_grid.transform.c - ref[0] + setup.offset[0]
    y0 = ext_grid.transform.f - ref[1] + setup.offset[1]
    xs = (x0 + (np.arange(ext.width) + 0.5) * PAN_RES).astype(np.float64)
    ys = (y0 - (np.arange(ext.height) + 0.5) * PAN_RES).astype(np.float64)
    tb = setup.terrain.block(x0, y0, PAN_RES, ext.height, ext.width, setup.sun)
    lit = cast_shadow_lit(setup.terrain, x0, y0, PAN_RES, ext.height, ext.width, setup.sun)
    ids = _tile_landslide_ids(setup, ext_grid)
    cls, refl = render_landcover(xs, ys, tb, ids, setup.attrs, setup.seed, setup.phenology)
    direct = np.clip(tb.cos_incidence, 0.0, None) * lit
    sky_view = ((1.0 + np.cos(np.radians(tb.slope_deg))) / 2.0).astype(np.float32)
    signal = sensor.at_sensor(refl, direct, setup.sin_el, sky_view)
    rng = np.random.default_rng([setup.seed, setup.noise_salt, win.row_off, win.col_off])
    core = (slice(h, h + win.height), slice(h, h + win.width))
    pan = sensor.to_dn(sensor.pan_from_signal(signal)[core], sensor.pan_gain, rng,
                       sensor.pan_offset)
    hr = h // RATIO
    ms = sensor.ms_from_signal(signal)[:, hr:hr + win.height // RATIO,
                                       hr:hr + win.width // RATIO]
    ms_dn = np.stack([sensor.to_dn(ms[b], sensor.gain[b], rng, sensor.offset[b])
                      for b in range(len(BANDS))])
    return _Tile(window=win, pan=pan, ms=ms_dn, truth=(ids[core] > 0).astype(np.uint8),
                 height=tb.height[core].astype(np.float32), cls=cls[core],
                 signal=signal[:, core[0], core[1]], slope_deg=tb.slope_deg[core],
                 direct=direct[core], lit=lit[core])


def _scene_metadata(setup: _SceneSetup, size: int, acquisition: datetime,
                    ls_config: LandslideConfig, fraction: float,
                    classes: dict[str, dict[str, float]], shares: tuple[float, float],
                    files: list[Path], seconds: float) -> dict[str, Any]:
    """The content of scene.json (format ``landslip-synthetic-scene`` version 1)."""
    from landslip import __version__

    sun, sensor = setup.sun, setup.sensor
    return {
        "format": "landslip-synthetic-scene",
        "version": 1,
        "landslip_version": __version__,
        "seed": setup.seed,
        "size": size,
        "crs": f"EPSG:{CRS_EPSG}",
        "pan": {"file": "pan.tif", "res_m": PAN_RES, "shape": [size, size],
                "dtype": "uint16", "bits": 12},
        "ms": {"file": "ms.tif", "res_m": MS_RES, "shape": [size // RATIO] * 2,
               "bands": list(BANDS), "dtype": "uint16", "bits": 12},
        "bounds": list(setup.pan_grid.bounds),
        "centre_lonlat": list(CENTRE_LONLAT),
        "local_origin_utm": list(setup.ref),
        "acquisition_utc": acquisition.isoformat(),
        "sun": {"azimuth_deg": round(sun.azimuth_deg, 3),
                "elevation_deg": round(sun.elevation_deg, 3)},
        "landslides": {
            "count": len(setup.polys),
            "fraction": fraction,
            "target_fraction": ls_config.target_fraction,
            "fraction_range": list(ls_config.fraction_range),
            "length_m": [ls_config.min_length_m, ls_config.max_length_m],
            "shaded_share": shares[0],
            "cast_shadow_share": shares[1],
            "epicentre_lonlat": list(ls_config.epicentre_lonlat),
        },
        "classes": classes,
        "sensor": {"pan_weights": list(sensor.pan_weights), "gain": list(sensor.gain),
                   "pan_gain": sensor.pan_gain, "ms_psf_sigma_pan_px": sensor.ms_psf_sigma,
                   "pan_psf_sigma_px": sensor.pan_psf_sigma, "offset": list(sensor.offset),
                   "read_noise": sensor.read_noise, "shot_noise": sensor.shot_noise},
        "phenology": {"autumn": setup.phenology.autumn, "harvested": setup.phenology.harvested,
                      "vigour": setup.phenology.vigour},
        "files": sorted(p.name for p in files),
        "seconds": round(seconds, 2),
    }


def _write_geojson(path: Path, polys: list[Any], grid: Grid) -> Path:
    """Write UTM polygons as lon/lat GeoJSON (densified so that reprojection keeps them)."""
    import geopandas as gpd
    import shapely

    geoms = [shapely.segmentize(p, 2.0) for p in polys]
    lengths = []
    for p in polys:
        rect = p.minimum_rotated_rectangle
        xy = np.asarray(rect.exterior.coords)
        sides = np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1]))
        lengths.append(float(sides.max()) if len(sides) else 0.0)
    gdf = gpd.GeoDataFrame(
        {"id": np.arange(1, len(polys) + 1, dtype=np.int32),
         "area_m2": np.array([p.area for p in polys], dtype=np.float64).round(1),
         "length_m": np.array(lengths, dtype=np.float64).round(1)},
        geometry=geoms,
        crs=grid.crs,
    ).to_crs("EPSG:4326")
    with atomic_path(path) as tmp:
        # the layer name is the GeoJSON "name" member: not the temporary file's name
        gdf.to_file(tmp, driver="GeoJSON", engine="pyogrio", layer="landslides")
    return path

