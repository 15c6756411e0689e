"""Make a synthetic SPOT-7-like scene with known landslide truth, block by block.

:func:`make_scene` writes, into one folder:

* ``pan.tif``: 1 band "pan", 1.5 m, uint16 12-bit DNs, EPSG:32654 (UTM 54N);
* ``ms.tif``: 4 bands blue, green, red, nir, 6 m, uint16, the same extent;
* ``truth.tif``: uint8 0/1 on the PAN grid, the rasterization of the polygons;
* ``landslides.geojson``: the landslide polygons in EPSG:4326 (lon/lat), like the GSI data;
* ``dem.tif`` (optional): float32 elevation in metres on the PAN grid;
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from landslip.errors import InputError
from landslip.grid import Grid, Window
from landslip.io.atomic import atomic_path, write_json_atomic
from landslip.io.raster import RasterWriter
from landslip.progress import track
from landslip.synthetic.landcover import CLASS_NAMES, LandslideAttrs, render_landcover
from landslip.synthetic.landslides import LandslideConfig, generate_landslides
from landslip.synthetic.sensor import SensorModel
from landslip.synthetic.solar import SPOT7_ATSUMA_TIME, solar_position
from landslip.synthetic.terrain import TerrainModel, cast_shadow_lit

__all__ = ["MAX_SIZE", "MIN_SIZE", "SceneResult", "make_scene", "scene_grids"]

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


@dataclass(frozen=True)
class SceneResult:
    """What :func:`make_scene` wrote and measured.

    Attributes:
        out_dir: The output folder.
        pan, ms, truth, landslides, preview, scene_json: Paths of the files written.
        dem: Path of the DEM, or None when not requested.
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


def _tiles(size: int) -> list[Window]:
    out = []
    for r in range(0, size, TILE):
        for c in range(0, size, TILE):
            out.append(Window(r, c, min(TILE, size - r), min(TILE, size - c)))
    return out


def make_scene(
    out_dir: str | Path,
    size: int = 2048,
    seed: int = 0,
    dem: bool = False,
    landslide_fraction: float | None = None,
    fraction_range: tuple[float, float] = (0.02, 0.08),
    preview: bool = True,
    acquisition: datetime = SPOT7_ATSUMA_TIME,
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

    Returns:
        A :class:`SceneResult` with the paths and the measured figures.

    Raises:
        InputError: For a bad size or landslide fraction.
    """
    import rasterio
    import shapely
    from rasterio.features import rasterize
    from shapely import STRtree
    from shapely.affinity import translate

    t_start = time.perf_counter()
    _check_size(size)
    lo, hi = fraction_range
    target = (lo + hi) / 2 if landslide_fraction is None else float(landslide_fraction)
    ls_config = LandslideConfig(fraction_range=(lo, hi), target_fraction=target)
    pan_grid, ms_grid, ref = scene_grids(size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    sun = solar_position(CENTRE_LONLAT[1], CENTRE_LONLAT[0], acquisition)
    if sun.elevation_deg <= 5:
        raise InputError(f"the sun is only {sun.elevation_deg:.1f} degrees high at "
                         f"{acquisition.isoformat()}; choose a daytime acquisition")
    sin_el = math.sin(math.radians(sun.elevation_deg))
    terrain = TerrainModel(seed=seed)
    sensor = SensorModel()

    # --- landslide polygons (local metres -> UTM) ---------------------------------------
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{CRS_EPSG}", always_xy=True)
    ex, ey = to_utm.transform(*ls_config.epicentre_lonlat)
    left, bottom, right, top = pan_grid.bounds
    local_fp = (left - ref[0], bottom - ref[1], right - ref[0], top - ref[1])
    polys_local = generate_landslides(terrain, local_fp, (ex - ref[0], ey - ref[1]), seed,
                                      ls_config)
    polys = [translate(p, ref[0], ref[1]) for p in polys_local]
    attrs = _landslide_attrs(len(polys), seed)
    tree = STRtree(polys) if polys else None

    # --- tiles ----------------------------------------------------------------------------
    n_cls = len(CLASS_NAMES)
    cls_count = np.zeros(n_cls, np.int64)
    cls_ndvi = np.zeros(n_cls, np.float64)
    cls_slope = np.zeros(n_cls, np.float64)
    slide_px = 0
    slide_shaded = 0
    slide_cast = 0
    paths = {name: out / f"{name}.tif" for name in ("pan", "ms", "truth", "dem")}
    tags = {"landslip_synthetic_seed": str(seed), "sensor": "synthetic SPOT-7-like"}
    writers: dict[str, RasterWriter] = {
        "pan": RasterWriter(paths["pan"], pan_grid, 1, "uint16", descriptions=["pan"], tags=tags),
        "ms": RasterWriter(paths["ms"], ms_grid, 4, "uint16", descriptions=list(BANDS),
                           tags=tags),
        "truth": RasterWriter(paths["truth"], pan_grid, 1, "uint8", descriptions=["landslide"],
                              tags=tags),
    }
    if dem:
        writers["dem"] = RasterWriter(paths["dem"], pan_grid, 1, "float32",
                                      descriptions=["elevation_m"], tags=tags)
    tiles = _tiles(size)
    h = HALO
    with rasterio.Env(GDAL_CACHEMAX=128):
        opened: list[RasterWriter] = []
        try:
            for w in writers.values():
                opened.append(w.__enter__())
            for win in track(tiles, total=len(tiles), description="synth"):
                ext = win.expand(h)
                ext_grid = pan_grid.window_grid(ext)
                x0 = ext_grid.transform.c - ref[0]
                y0 = ext_grid.transform.f - ref[1]
                xs = (x0 + (np.arange(ext.width) + 0.5) * PAN_RES).astype(np.float64)
                ys = (y0 - (np.arange(ext.height) + 0.5) * PAN_RES).astype(np.float64)
                tb = terrain.block(x0, y0, PAN_RES, ext.height, ext.width, sun)
                lit = cast_shadow_lit(terrain, x0, y0, PAN_RES, ext.height, ext.width, sun)
                ids = np.zeros((ext.height, ext.width), np.int32)
                if tree is not None:
                    b = ext_grid.bounds
                    hits = tree.query(shapely.box(*b))
                    if len(hits):
                        ids = rasterize(((polys[i], int(i) + 1) for i in sorted(hits)),
                                        out_shape=ids.shape, transform=ext_grid.transform,
                                        fill=0, dtype="int32")
                cls, refl = render_landcover(xs, ys, tb, ids, attrs, seed)
                direct = np.clip(tb.cos_incidence, 0.0, None) * lit
                sky_view = ((1.0 + np.cos(np.radians(tb.slope_deg))) / 2.0).astype(np.float32)
                signal = sensor.at_sensor(refl, direct, sin_el, sky_view)
                rng = np.random.default_rng([seed, 77, win.row_off, win.col_off])
                core = (slice(h, h + win.height), slice(h, h + win.width))
                pan = sensor.pan_from_signal(signal)[core]
                opened[0].write(sensor.to_dn(pan, sensor.pan_gain, rng), win)
                hr = h // RATIO
                ms = sensor.ms_from_signal(signal)[:, hr:hr + win.height // RATIO,
                                                   hr:hr + win.width // RATIO]
                ms_dn = np.stack([sensor.to_dn(ms[b], sensor.gain[b], rng) for b in range(4)])
                opened[1].write(ms_dn, Window(win.row_off // RATIO, win.col_off // RATIO,
                                              win.height // RATIO, win.width // RATIO))
                truth = (ids[core] > 0).astype(np.uint8)
                opened[2].write(truth, win)
                if dem:
                    opened[3].write(tb.height[core].astype(np.float32), win)
                # statistics on the core
                c = cls[core].ravel()
                sig = signal[:, core[0], core[1]]
                ndvi = ((sig[3] - sig[2]) / np.maximum(sig[3] + sig[2], 1e-6)).ravel()
                cls_count += np.bincount(c, minlength=n_cls)
                cls_ndvi += np.bincount(c, weights=ndvi, minlength=n_cls)
                cls_slope += np.bincount(c, weights=tb.slope_deg[core].ravel(), minlength=n_cls)
                s = truth.astype(bool)
                slide_px += int(s.sum())
                rel = (direct[core] / sin_el)[s]
                slide_shaded += int((rel < 0.35).sum())
                slide_cast += int((lit[core][s] < 0.5).sum())
        except BaseException as exc:
            for w in reversed(opened):
                w.__exit__(type(exc), exc, exc.__traceback__)
            raise
        for w in reversed(opened):
            w.__exit__(None, None, None)

    # --- vectors, preview, metadata -----------------------------------------------------
    geojson = out / "landslides.geojson"
    _write_geojson(geojson, polys, pan_grid)
    preview_path: Path | None = None
    if preview:
        from landslip.synthetic.preview import write_preview

        preview_path = write_preview(out / "preview.png", paths["ms"], polys)
    total_px = size * size
    fraction = slide_px / total_px
    class_fraction = {CLASS_NAMES[i]: float(cls_count[i] / total_px)
                      for i in range(1, n_cls) if cls_count[i]}
    class_ndvi = {CLASS_NAMES[i]: float(cls_ndvi[i] / cls_count[i])
                  for i in range(1, n_cls) if cls_count[i]}
    class_slope = {CLASS_NAMES[i]: float(cls_slope[i] / cls_count[i])
                   for i in range(1, n_cls) if cls_count[i]}
    shaded = slide_shaded / slide_px if slide_px else 0.0
    cast = slide_cast / slide_px if slide_px else 0.0
    seconds = time.perf_counter() - t_start
    from landslip import __version__

    meta: dict[str, Any] = {
        "format": "landslip-synthetic-scene",
        "version": 1,
        "landslip_version": __version__,
        "seed": seed,
        "size": size,
        "crs": f"EPSG:{CRS_EPSG}",
        "pan": {"file": "pan.tif", "res_m": PAN_RES, "shape": [size, size],
                "dtype": "uint16", "bits": 12},
        "ms": {"file": "ms.tif", "res_m": MS_RES, "shape": [size // RATIO] * 2,
               "bands": list(BANDS), "dtype": "uint16", "bits": 12},
        "bounds": list(pan_grid.bounds),
        "centre_lonlat": list(CENTRE_LONLAT),
        "local_origin_utm": list(ref),
        "acquisition_utc": acquisition.isoformat(),
        "sun": {"azimuth_deg": round(sun.azimuth_deg, 3),
                "elevation_deg": round(sun.elevation_deg, 3)},
        "landslides": {
            "count": len(polys),
            "fraction": fraction,
            "target_fraction": target,
            "fraction_range": [lo, hi],
            "length_m": [ls_config.min_length_m, ls_config.max_length_m],
            "shaded_share": shaded,
            "cast_shadow_share": cast,
            "epicentre_lonlat": list(ls_config.epicentre_lonlat),
        },
        "classes": {k: {"fraction": class_fraction[k], "mean_ndvi": class_ndvi[k],
                        "mean_slope_deg": class_slope[k]} for k in class_fraction},
        "sensor": {"pan_weights": list(sensor.pan_weights), "gain": list(sensor.gain),
                   "pan_gain": sensor.pan_gain, "ms_psf_sigma_pan_px": sensor.ms_psf_sigma,
                   "pan_psf_sigma_px": sensor.pan_psf_sigma},
        "files": sorted(p.name for p in [*(paths[k] for k in writers), geojson]
                        + ([preview_path] if preview_path else [])),
        "seconds": round(seconds, 2),
    }
    scene_json = write_json_atomic(out / "scene.json", meta)
    if not (lo <= fraction <= hi):
        log.warning("landslide fraction %.4f is outside the configured range [%s, %s]",
                    fraction, lo, hi)
    return SceneResult(
        out_dir=out, pan=paths["pan"], ms=paths["ms"], truth=paths["truth"],
        landslides=geojson, preview=preview_path, scene_json=scene_json,
        dem=paths["dem"] if dem else None, pan_grid=pan_grid, ms_grid=ms_grid, seed=seed,
        landslide_count=len(polys), landslide_fraction=fraction, class_ndvi=class_ndvi,
        class_fraction=class_fraction, class_slope_deg=class_slope, landslide_shaded_share=shaded,
        landslide_cast_shadow_share=cast, seconds=seconds,
    )


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
        gdf.to_file(tmp, driver="GeoJSON", engine="pyogrio")
    return path

