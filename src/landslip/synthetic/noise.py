"""Seeded, stateless 2-D noise: gradient (Perlin) noise, fractal sums and per-cell hashes.

Every function here is a pure function of map coordinates and a seed: evaluating it over one
block of a scene gives exactly the values it gives over the same pixels inside a larger block.
That is what lets the scene generator work block by block with bounded memory while the blocks
still join seamlessly. Randomness comes from an integer hash of the lattice cell (a
murmur3-style finaliser on uint32), never from a stateful generator.

Coordinates are metres in a local frame (see :class:`~landslip.synthetic.terrain.TerrainModel`);
arrays may have any shape and are broadcast together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["cell_hash", "coarse_field", "fbm", "hash_u32", "perlin"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
ArrayF = npt.NDArray[np.floating[Any]] | float

_K1 = np.uint32(0x27D4EB2D)
_K2 = np.uint32(0x165667B1)
_K3 = np.uint32(0x9E3779B9)
_M1 = np.uint32(0x85EBCA6B)
_M2 = np.uint32(0xC2B2AE35)

# 16 unit gradient directions (Perlin's improved noise uses a fixed small set too).
_ANGLES = np.arange(16) * (2.0 * np.pi / 16.0)
_GX = np.cos(_ANGLES).astype(np.float32)
_GY = np.sin(_ANGLES).astype(np.float32)


def _mix_seed(seed: int, salt: int) -> np.uint32:
    s = (int(seed) * 0x9E3779B1 + int(salt) * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    s ^= s >> 15
    s = (s * 0x2C1B3C6D) & 0xFFFFFFFF
    s ^= s >> 12
    return np.uint32(s)


def hash_u32(ix: npt.NDArray[np.int64], iy: npt.NDArray[np.int64], seed: int,
             salt: int) -> npt.NDArray[np.uint32]:
    """Hash integer lattice coordinates to uint32 (murmur3 finaliser), broadcasting ix and iy."""
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps on purpose
        h = np.asarray(ix).astype(np.uint32) * _K1
        h = h ^ (np.asarray(iy).astype(np.uint32) * _K2) ^ _mix_seed(seed, salt)
        h = h * _K3
        h ^= h >> np.uint32(16)
        h = h * _M1
        h ^= h >> np.uint32(13)
        h = h * _M2
        h ^= h >> np.uint32(16)
    return np.asarray(h, dtype=np.uint32)


def cell_hash(ix: npt.NDArray[np.int64], iy: npt.NDArray[np.int64], seed: int,
              salt: int) -> F32:
    """A uniform value in [0, 1) for each integer cell (ix, iy), float32."""
    return (hash_u32(ix, iy, seed, salt) >> np.uint32(8)).astype(np.float32) * np.float32(
        1.0 / (1 << 24)
    )


def perlin(x: ArrayF, y: ArrayF, seed: int, salt: int) -> F32:
    """Gradient noise at lattice coordinates (x, y) (one lattice cell per unit).

    Returns:
        float32 array of the broadcast shape, roughly in [-1, 1], zero on lattice points.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 2 and y.ndim == 2 and x.shape[0] == 1 and y.shape[1] == 1:
        return _perlin_grid(np.asarray(x[0], np.float64), np.asarray(y[:, 0], np.float64),
                            seed, salt)
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    ix = x0.astype(np.int64)
    iy = y0.astype(np.int64)
    one = np.int64(1)

    def grad(hx: npt.NDArray[np.int64], hy: npt.NDArray[np.int64], dx: F32, dy: F32) -> F32:
        k = (hash_u32(hx, hy, seed, salt) >> np.uint32(28)).astype(np.intp)
        return np.asarray(_GX[k] * dx + _GY[k] * dy, dtype=np.float32)

    n00 = grad(ix, iy, fx, fy)
    n10 = grad(ix + one, iy, fx - 1.0, fy)
    n01 = grad(ix, iy + one, fx, fy - 1.0)
    n11 = grad(ix + one, iy + one, fx - 1.0, fy - 1.0)
    u = fx * fx * fx * (fx * (fx * 6.0 - 15.0) + 10.0)
    v = fy * fy * fy * (fy * (fy * 6.0 - 15.0) + 10.0)
    nx0 = n00 + u * (n10 - n00)
    nx1 = n01 + u * (n11 - n01)
    out = np.asarray((nx0 + v * (nx1 - nx0)) * np.float32(1.41), dtype=np.float32)
    shape = np.broadcast_shapes(x.shape, y.shape)
    return out if out.shape == shape else np.ascontiguousarray(np.broadcast_to(out, shape))


def _perlin_grid(xv: F64, yv: F64, seed: int, salt: int) -> F32:
    """:func:`perlin` on the grid of a row vector xv and a column vector yv, (len(yv), len(xv)).

    Same values as the general path, but the gradients are hashed once per lattice point of
    the (small) lattice the grid spans, then gathered, instead of once per pixel and corner.
    """
    x0 = np.floor(xv)
    y0 = np.floor(yv)
    fx = (xv - x0).astype(np.float32)
    fy = (yv - y0).astype(np.float32)
    ix = x0.astype(np.int64)
    iy = y0.astype(np.int64)
    lx = np.arange(ix.min(), ix.max() + 2, dtype=np.int64)
    ly = np.arange(iy.min(), iy.max() + 2, dtype=np.int64)
    k = (hash_u32(lx[None, :], ly[:, None], seed, salt) >> np.uint32(28)).astype(np.intp)
    gxl = _GX[k]
    gyl = _GY[k]
    cx = ix - lx[0]
    cy = iy - ly[0]

    def corner(dx: int, dy: int) -> F32:
        sel = np.ix_(cy + dy, cx + dx)
        return np.asarray(gxl[sel] * (fx - np.float32(dx))[None, :]
                          + gyl[sel] * (fy - np.float32(dy))[:, None], dtype=np.float32)

    n00 = corner(0, 0)
    n10 = corner(1, 0)
    n01 = corner(0, 1)
    n11 = corner(1, 1)
    u = (fx * fx * fx * (fx * (fx * 6.0 - 15.0) + 10.0))[None, :]
    v = (fy * fy * fy * (fy * (fy * 6.0 - 15.0) + 10.0))[:, None]
    nx0 = n00 + u * (n10 - n00)
    nx1 = n01 + u * (n11 - n01)
    return np.asarray((nx0 + v * (nx1 - nx0)) * np.float32(1.41), dtype=np.float32)


def fbm(
    x: ArrayF,
    y: ArrayF,
    seed: int,
    salt: int,
    wavelength: float,
    octaves: int = 4,
    gain: float = 0.5,
    lacunarity: float = 2.0,
    first_octave: int = 0,
) -> F32:
    """Fractal Brownian motion: a sum of ``octaves`` gradient-noise layers.

    Args:
        x, y: Coordinates in metres (any broadcastable shapes).
        seed: Scene seed.
        salt: Distinguishes independent fields of one scene.
        wavelength: Wavelength of the first octave in metres.
        octaves: Number of layers; each has ``lacunarity`` times the frequency and ``gain``
            times the amplitude of the previous one.
        gain: Amplitude ratio between octaves (0.5 gives a 1/f, "pink" spectrum).
        lacunarity: Frequency ratio between octaves.
        first_octave: Skip the first layers (to evaluate high and low octaves separately);
            normalisation still uses the full sum so that parts add up to the whole.

    Returns:
        float32 array, normalised by the total amplitude (roughly in [-1, 1]).
    """
    total = sum(gain**o for o in range(first_octave + octaves))
    out: F32 | None = None
    for o in range(first_octave, first_octave + octaves):
        f = lacunarity**o / wavelength
        # a fixed, octave-dependent offset decorrelates the lattices of the octaves
        layer = perlin(np.asarray(x) * f + 17.31 * o, np.asarray(y) * f - 9.77 * o, seed,
                       salt * 64 + o) * np.float32(gain**o)
        out = layer if out is None else out + layer
    assert out is not None
    return np.asarray(out / np.float32(total), dtype=np.float32)


def coarse_field(
    func: Callable[[F64, F64], F32],
    x0: float,
    y0: float,
    res: float,
    height: int,
    width: int,
    step: float,
) -> F32:
    """Evaluate a smooth field on a global coarse lattice and interpolate bilinearly.

    The lattice points are multiples of ``step`` metres in the local frame, so a pixel gets the
    same value whichever block it is computed in. Use it only for slowly varying fields (a
    wavelength of at least ~20 ``step``) whose values, not derivatives, matter.

    Args:
        func: ``func(x, y) -> float32 array`` of coordinates in metres.
        x0, y0: Local coordinates of the upper-left corner of the block (y up).
        res: Pixel size in metres.
        height, width: Block shape in pixels.
        step: Lattice spacing in metres.

    Returns:
        float32 array (height, width).
    """
    xs = x0 + (np.arange(width) + 0.5) * res
    ys = y0 - (np.arange(height) + 0.5) * res
    kx0 = int(np.floor(xs[0] / step))
    kx1 = int(np.floor(xs[-1] / step)) + 1
    ky0 = int(np.floor(ys[-1] / step))
    ky1 = int(np.floor(ys[0] / step)) + 1
    lx = (np.arange(kx0, kx1 + 1) * step).astype(np.float64)
    ly = (np.arange(ky0, ky1 + 1) * step).astype(np.float64)
    vals = np.asarray(func(lx[None, :], ly[:, None]), dtype=np.float32)
    tx = xs / step - kx0
    ty = ys / step - ky0
    ixl = np.clip(np.floor(tx).astype(np.intp), 0, len(lx) - 2)
    iyl = np.clip(np.floor(ty).astype(np.intp), 0, len(ly) - 2)
    wx = (tx - ixl).astype(np.float32)[None, :]
    wy = (ty - iyl).astype(np.float32)[:, None]
    a = vals[iyl][:, ixl]
    b = vals[iyl][:, ixl + 1]
    c = vals[iyl + 1][:, ixl]
    d = vals[iyl + 1][:, ixl + 1]
    top = a + wx * (b - a)
    bot = c + wx * (d - c)
    return np.asarray(top + wy * (bot - top), dtype=np.float32)
