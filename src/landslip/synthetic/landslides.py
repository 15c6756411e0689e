"""Landslide scars of a seismic event: where they start, how they run and their polygons.

Model, following the 2018 Hokkaido Eastern Iburi earthquake (shallow slides of pumice soil
on the hill sides around Atsuma):

* crowns are drawn by rejection sampling: the acceptance rises with slope (few slides below
  ~20 degrees) and with a "shaking" field, the product of a decay with distance from the
  epicentre (42.69 N, 142.01 E) and a low-frequency cluster noise, so slides cluster as in a
  seismic event;
* from the crown each slide runs down the steepest descent of the terrain for a length drawn
  from a log-normal law and clipped to [10, 200] m, stopping early where the slope flattens
  (the deposit reaches the valley floor);
* its outline is a teardrop around the path (widest in the upper third, blunt crown,
  tapering toe), 25 to 60 % as wide as long, with a ragged edge;
* slides are added until their union covers the target fraction of the scene; overlapping
  slides merge, as in the GSI inventory.

Polygons are built in the scene's UTM CRS (metres) and clipped to the scene footprint.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from landslip.errors import InputError
from landslip.synthetic.noise import fbm
from landslip.synthetic.terrain import TerrainModel

__all__ = ["LandslideConfig", "generate_landslides"]

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LandslideConfig:
    """How many landslides and of what size.

    Attributes:
        fraction_range: Allowed range of the landslide share of the scene area (0..1).
        target_fraction: Share aimed at (inside ``fraction_range``).
        min_length_m: Shortest slide, metres.
        max_length_m: Longest slide, metres.
        median_length_m: Median of the log-normal length law, metres.
        min_slope_deg: Slope below which no slide starts.
        epicentre_lonlat: Epicentre of the earthquake (lon, lat), degrees.
    """

    fraction_range: tuple[float, float] = (0.02, 0.08)
    target_fraction: float = 0.05
    min_length_m: float = 10.0
    max_length_m: float = 200.0
    median_length_m: float = 55.0
    min_slope_deg: float = 20.0
    epicentre_lonlat: tuple[float, float] = (142.007, 42.690)

    def __post_init__(self) -> None:
        lo, hi = self.fraction_range
        if not 0.0 < lo <= self.target_fraction <= hi < 0.5:
            raise InputError(
                f"landslide fraction range must satisfy 0 < low <= target <= high < 0.5, got "
                f"range {self.fraction_range} and target {self.target_fraction}"
            )
        if not 0 < self.min_length_m < self.max_length_m:
            raise InputError(
                f"landslide lengths must satisfy 0 < min < max, got {self.min_length_m} and "
                f"{self.max_length_m}"
            )


def _trace(terrain: TerrainModel, x: F64, y: F64, length: F64, step: float,
           min_slope: float) -> tuple[F64, F64, F64]:
    """Follow the steepest descent from crowns (x, y) for up to ``length`` metres.

    Returns:
        (xs (n, k), ys (n, k), run length reached (n,)), k = max steps + 1. Points after a
        path stopped repeat its last point.
    """
    n_steps = math.ceil(float(length.max()) / step)
    px = np.empty((len(x), n_steps + 1))
    py = np.empty((len(x), n_steps + 1))
    px[:, 0], py[:, 0] = x, y
    run = np.zeros(len(x))
    active = np.ones(len(x), dtype=bool)
    tan_stop = math.tan(math.radians(min_slope))
    cx, cy = x.copy(), y.copy()
    for k in range(1, n_steps + 1):
        idx = np.flatnonzero(active)
        if idx.size:
            gx, gy = terrain.gradient(cx[idx], cy[idx])
            g = np.hypot(gx, gy).astype(np.float64)
            stop = (g < tan_stop) & (run[idx] >= 10.0)
            stop |= run[idx] + step > length[idx]
            stop |= g < 1e-6
            go = idx[~stop]
            gg = np.maximum(g[~stop], 1e-9)
            cx[go] -= step * gx[~stop] / gg
            cy[go] -= step * gy[~stop] / gg
            run[go] += step
            active[idx[stop]] = False
        px[:, k], py[:, k] = cx, cy
    return px, py, run


def _outline(px: F64, py: F64, width: float, rng: np.random.Generator) -> F64:
    """Teardrop ring (m, 2) around a path (x (k,), y (k,)), widest in its upper third.

    The half-width follows sqrt(sin) of the position along the path (blunt crown, tapering
    toe) times a smoothed random factor (ragged edge).
    """
    # keep distinct points only
    keep = np.ones(len(px), dtype=bool)
    keep[1:] = np.hypot(np.diff(px), np.diff(py)) > 1e-6
    px, py = px[keep], py[keep]
    t = np.linspace(0.0, 1.0, len(px))
    tx = np.gradient(px) if len(px) > 1 else np.array([1.0])
    ty = np.gradient(py) if len(py) > 1 else np.array([0.0])
    norm = np.maximum(np.hypot(tx, ty), 1e-9)
    nx, ny = -ty / norm, tx / norm
    profile = np.sqrt(np.clip(np.sin(np.pi * (0.04 + 0.92 * t) ** 0.8), 0, 1)) * (1.0 - 0.4 * t)
    ragged = 1.0 + 0.12 * np.convolve(rng.standard_normal(len(t) + 4), np.ones(5) / 5, "valid")
    half = 0.5 * width * profile * ragged[: len(t)]
    left = np.column_stack([px + nx * half, py + ny * half])
    right = np.column_stack([px - nx * half, py - ny * half])
    return np.vstack([left, right[::-1]])


@dataclass
class _Coverage:
    """The slides drawn so far and the area they should cover.

    Attributes:
        footprint: The scene footprint (shapely polygon); slides are clipped to it.
        target: Area to cover, square metres.
        cap: Largest sum of slide areas (the union is never larger than the sum).
        polys: Slides accepted so far (shapely polygons, may overlap).
        total: Sum of their areas, or the area of their union once merged.
    """

    footprint: Any
    target: float
    cap: float
    polys: list[Any] = field(default_factory=list)
    total: float = 0.0

    @property
    def full(self) -> bool:
        """True when the slides cover the target with a margin for their overlaps."""
        return self.total >= self.target * 1.12


def generate_landslides(
    terrain: TerrainModel,
    footprint: tuple[float, float, float, float],
    epicentre: tuple[float, float],
    seed: int,
    config: LandslideConfig,
) -> list[Any]:
    """Draw landslide polygons over a footprint until they cover the target fraction.

    Args:
        terrain: The scene's terrain.
        footprint: (left, bottom, right, top) of the scene in local metres.
        epicentre: The epicentre in local metres (x east, y north).
        seed: Scene seed.
        config: Sizes and target fraction.

    Returns:
        Shapely polygons in local metres, merged where they overlap, clipped to the
        footprint, sorted north to south then west to east.
    """
    import shapely
    from shapely.geometry import box

    fp = box(*footprint)
    area = fp.area
    target = config.target_fraction * area
    # the union is never larger than the sum of the parts: capping the sum caps the union
    cov = _Coverage(fp, target, max(0.92 * config.fraction_range[1] * area, target * 1.12))
    rng = np.random.default_rng([seed, 4242])
    min_slope = config.min_slope_deg
    empty_batches = 0
    merged: Any = None
    for _ in range(10_000):
        cx, cy = _accepted_crowns(rng, terrain, footprint, area, epicentre, seed, min_slope)
        if cx.size == 0:
            empty_batches += 1
            if empty_batches >= 3:  # too flat for the slope threshold: relax it
                min_slope = max(min_slope - 4.0, -10.0)
                empty_batches = 0
            continue
        remaining = max(cov.target * 1.12 - cov.total, 0.0)
        n_take = max(8, math.ceil(remaining / 700.0))
        _add_slides(rng, terrain, cx[:n_take], cy[:n_take], config, cov)
        if cov.full:
            merged = shapely.union_all(cov.polys)
            if merged.area >= cov.target:
                break
            cov.total = merged.area
    if merged is None:
        merged = shapely.union_all(cov.polys)
    parts = [g for g in getattr(merged, "geoms", [merged]) if g.geom_type == "Polygon"]
    parts = [g for g in parts if g.area >= 20.0]
    parts.sort(key=lambda g: (-round(g.centroid.y, 3), round(g.centroid.x, 3)))
    log.debug("%d landslides cover %.2f %% of the footprint", len(parts),
              100 * sum(g.area for g in parts) / area)
    return parts


def _accepted_crowns(rng: np.random.Generator, terrain: TerrainModel,
                     footprint: tuple[float, float, float, float], area: float,
                     epicentre: tuple[float, float], seed: int,
                     min_slope: float) -> tuple[F64, F64]:
    """One batch of candidate crowns, kept by rejection sampling on slope and shaking.

    Returns:
        (x, y) of the accepted crowns in local metres, in the order they were drawn.
    """
    left, bottom, right, top = footprint
    n = int(min(max(area / 2000.0, 2048), 65536))  # candidates per batch
    cx = rng.uniform(left, right, n)
    cy = rng.uniform(bottom, top, n)
    u = rng.random(n)
    gx, gy = terrain.gradient(cx, cy)
    slope = np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float64)
    suit = np.clip((slope - min_slope) / 10.0, 0.0, 1.0)
    cluster = fbm(cx, cy, seed, 40, 900.0, octaves=2).astype(np.float64)
    shake = np.exp(-np.hypot(cx - epicentre[0], cy - epicentre[1]) / 20_000.0)
    p = suit * (0.08 + 0.92 / (1.0 + np.exp(-10.0 * cluster))) * shake
    acc = np.flatnonzero(u < p)
    return cx[acc], cy[acc]


def _add_slides(rng: np.random.Generator, terrain: TerrainModel, cx: F64, cy: F64,
                config: LandslideConfig, cov: _Coverage) -> None:
    """Run a slide down from each crown and add its outline to ``cov`` while it fits."""
    import shapely
    from shapely.geometry import Polygon

    lengths = np.exp(rng.normal(math.log(config.median_length_m), 0.55, cx.size))
    lengths = np.clip(lengths, config.min_length_m, config.max_length_m)
    ratio = rng.uniform(0.25, 0.6, cx.size)
    px, py, run = _trace(terrain, cx, cy, lengths, 3.0, 8.0)
    for i in range(cx.size):
        if run[i] < config.min_length_m:
            continue
        width = max(ratio[i] * run[i], 6.0)
        ring = _outline(px[i], py[i], width, rng)
        poly = shapely.make_valid(Polygon(ring)).intersection(cov.footprint)
        if poly.is_empty or poly.area < 20.0:
            continue
        if cov.total + poly.area > cov.cap:  # would overshoot the allowed range: skip it
            continue
        cov.polys.append(poly)
        cov.total += poly.area
        if cov.full:
            break
