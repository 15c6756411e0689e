"""Extra model inputs beside the image: other rasters (pre-event image, DEM) and terrain bands.

``--extra`` of ``prepare`` and ``predict`` takes one raster per option, written
``[NAMES=]PATH[:RESAMPLING]`` (:func:`parse_extra`):

* ``PATH``: bands named by their band descriptions (``dem.tif`` of ``landslip synth`` is
  ``dem``);
* ``NAME=PATH``: a one-band raster is the band ``NAME``; the bands of a multi-band raster are
  ``NAME_<description>`` (``pre=pre_ms.tif`` gives ``pre_blue``, ``pre_green``, ``pre_red``,
  ``pre_nir``);
* ``N1,N2,...=PATH``: one name per band, in order;
* ``:RESAMPLING`` (optional, one of :data:`landslip.io.warp.RESAMPLING`): how the raster is
  warped onto the image grid, ``bilinear`` by default (continuous data); ``nearest`` or
  ``mode`` for classes. A raster already on the image's pixel lattice is read as is.

Every name is a ``band_name`` of the band grammar (:mod:`landslip.spectral.bands`). The band
named ``dem`` is elevation in metres; from it the terrain bands of
:mod:`landslip.spectral.terrain` (``slope`` in degrees, ``hillshade``) are computed on the
image grid with a halo, window by window (:class:`ExtraInputs`).

Rasters on other grids or CRSs are warped window by window (:class:`~landslip.io.warp.
WarpedReader`); a pixel is nodata (NaN) where the raster is nodata or does not reach.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from landslip.errors import BandError, InputError
from landslip.grid import Grid, Window
from landslip.io.raster import RasterInfo, raster_info
from landslip.io.warp import RESAMPLING, WarpedReader, check_resampling
from landslip.spectral.bands import BandSet, validate_band_names
from landslip.spectral.naming import band_slots
from landslip.spectral.terrain import HALO, TERRAIN_BANDS, terrain_window

__all__ = [
    "DEM_BAND",
    "ExtraInputs",
    "ExtraSpec",
    "ModelInputs",
    "extra_band_names",
    "model_inputs",
    "parse_extra",
    "terrain_needed",
]

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]

DEM_BAND = "dem"
"""The band name of elevation in metres, from which terrain bands are computed."""

_NAMES = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\s*,\s*[A-Za-z][A-Za-z0-9_]*)*")
_SYNTAX = ("write --extra as [NAMES=]PATH[:RESAMPLING], e.g. --extra dem=DEM.tif or "
           "--extra pre=PRE.tif:cubic")


@dataclass(frozen=True)
class ExtraSpec:
    """One ``--extra`` raster.

    Attributes:
        path: The raster file.
        names: The names given before ``=`` (one name: the band's name, or the prefix of a
            multi-band raster's bands), or None to use the band descriptions.
        resampling: How the raster is warped onto the image grid.
    """

    path: Path
    names: tuple[str, ...] | None = None
    resampling: str = "bilinear"

    def __str__(self) -> str:
        text = str(self.path)
        if self.names is not None:
            text = f"{','.join(self.names)}={text}"
        return text if self.resampling == "bilinear" else f"{text}:{self.resampling}"


def parse_extra(text: str) -> ExtraSpec:
    """Parse ``[NAMES=]PATH[:RESAMPLING]`` (see the module docstring).

    Raises:
        InputError: For an empty path or a bad name list.
    """
    body = text.strip()
    names: tuple[str, ...] | None = None
    head, sep, rest = body.partition("=")
    if sep and _NAMES.fullmatch(head.strip()):
        names = validate_band_names(head.split(","), "--extra names")
        body = rest.strip()
    resampling = "bilinear"
    stem, colon, tail = body.rpartition(":")
    if colon and tail.strip().lower() in RESAMPLING:
        resampling, body = check_resampling(tail), stem
    if not body:
        raise InputError(f"--extra {text!r} names no file; {_SYNTAX}")
    return ExtraSpec(Path(body), names, resampling)


def extra_band_names(spec: ExtraSpec, info: RasterInfo) -> tuple[str, ...]:
    """The band names an extra raster contributes (see the module docstring).

    Raises:
        BandError: When the names cannot be made (no descriptions, wrong count, bad names).
    """
    desc = [(d or "").strip().lower() for d in info.descriptions]
    given = spec.names
    if given is not None and len(given) == info.count:
        return given
    if given is not None and len(given) != 1:
        raise BandError(f"--extra {spec}: {len(given)} names for {info.count} band(s); give one "
                        "name per band, or one prefix")
    if not all(desc):
        hint = "NAME" if info.count == 1 else "PREFIX"
        raise BandError(f"--extra {spec}: the {info.count} band(s) of {info.path} have no "
                        f"descriptions to name them by; write --extra {hint}={info.path}")
    names = desc if given is None else [f"{given[0]}_{d}" for d in desc]
    return validate_band_names(names, f"--extra {spec}")


def terrain_needed(required: Sequence[str], available: Sequence[str]) -> tuple[str, ...]:
    """Terrain bands among ``required`` that no raster provides (to compute from the DEM)."""
    return tuple(n for n in required if n in TERRAIN_BANDS and n not in available)


@dataclass(frozen=True)
class _Source:
    spec: ExtraSpec
    info: RasterInfo
    names: tuple[str, ...]


class ExtraInputs:
    """Extra rasters and terrain bands, read window by window on an image grid.

    Open with ``with``; :meth:`read` gives the extra bands of a window (float32, NaN nodata).

    Args:
        specs: The ``--extra`` rasters.
        grid: The image grid.
        terrain: Terrain bands to compute from the band ``dem`` (:data:`TERRAIN_BANDS`).
        image_names: The image's band names (an extra band may not repeat one).

    Raises:
        RasterIOError: A raster is missing or unreadable (checked on creation).
        BandError: Names missing, repeated, or a terrain band without a ``dem`` band.
    """

    def __init__(self, specs: Sequence[ExtraSpec], grid: Grid, terrain: Sequence[str] = (),
                 image_names: Sequence[str] = ()) -> None:
        self.grid = grid
        infos = [raster_info(s.path) for s in specs]
        self.sources = [_Source(s, info, extra_band_names(s, info))
                        for s, info in zip(specs, infos, strict=True)]
        self.raw_names = tuple(n for s in self.sources for n in s.names)
        self.terrain = tuple(terrain)
        self.names = self.raw_names + self.terrain
        self.image_bands = tuple(image_names)
        self._check(image_names)
        self._readers: list[WarpedReader] = []
        self._stack = ExitStack()

    def _check(self, image_names: Sequence[str]) -> None:
        unknown = [n for n in self.terrain if n not in TERRAIN_BANDS]
        if unknown:
            raise BandError(f"unknown terrain band(s) {', '.join(unknown)}; use "
                            f"{', '.join(TERRAIN_BANDS)}")
        both = [*image_names, *self.names]
        twice = sorted({n for n in both if both.count(n) > 1})
        if twice:
            raise BandError(f"band name(s) {', '.join(twice)} given twice (image bands: "
                            f"{', '.join(image_names) or 'none'}; extra bands: "
                            f"{', '.join(self.names)}); name the --extra bands with a prefix, "
                            "e.g. --extra pre=PRE.tif")
        if self.terrain and DEM_BAND not in self.raw_names:
            raise BandError(f"{', '.join(self.terrain)} is computed from a band named "
                            f"{DEM_BAND!r} (elevation in metres), which no --extra gives; "
                            "add --extra dem=DEM.tif")

    def __enter__(self) -> ExtraInputs:
        with ExitStack() as stack:
            for s in self.sources:
                margin = HALO if DEM_BAND in s.names else 0
                self._readers.append(stack.enter_context(
                    WarpedReader(s.spec.path, self.grid, s.spec.resampling, margin)))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._readers = []
        self._stack.__exit__(exc_type, exc, tb)

    def describe(self) -> list[dict[str, object]]:
        """One record per raster: path, bands and resampling (for reports and dataset.json)."""
        return [{"path": str(s.spec.path), "bands": list(s.names),
                 "resampling": s.spec.resampling} for s in self.sources]

    def _dem(self, window: Window) -> F32:
        """The DEM of ``window`` (NaN where missing), with the window's own size."""
        for s, reader in zip(self.sources, self._readers, strict=True):
            if DEM_BAND in s.names:
                return np.asarray(reader.read(window)[s.names.index(DEM_BAND)], np.float32)
        raise BandError(f"no --extra gives the band {DEM_BAND!r}")

    def read(self, window: Window) -> F32:
        """The extra bands of a window of the image grid, in :attr:`names` order.

        Returns:
            float32 (len(names), h, w); NaN where nodata or not covered.
        """
        if len(self._readers) != len(self.sources):
            raise InputError("the extra inputs are not open; use them in a `with` block")
        parts: list[F32] = []
        dem: F32 | None = None
        for s, reader in zip(self.sources, self._readers, strict=True):
            if self.terrain and DEM_BAND in s.names:  # one read with the halo serves both
                block = reader.read(window.expand(HALO))
                dem = block[s.names.index(DEM_BAND)]
                parts.append(block[:, HALO:-HALO, HALO:-HALO])
            else:
                parts.append(reader.read(window))
        if self.terrain and dem is not None:
            parts.append(terrain_window(dem, self.grid, window, self.terrain))
        if not parts:
            return np.empty((0, window.height, window.width), dtype=np.float32)
        return np.concatenate(parts, axis=0)

    def band(self, window: Window, name: str) -> F32:
        """One band by name (raw or terrain) of a window, float32 (h, w), NaN nodata."""
        for s, reader in zip(self.sources, self._readers, strict=True):
            if name in s.names:
                return np.asarray(reader.read(window)[s.names.index(name)], np.float32)
        if name in TERRAIN_BANDS and DEM_BAND in self.raw_names:
            dem = self._dem(window.expand(HALO))
            return np.asarray(terrain_window(dem, self.grid, window, (name,))[0], np.float32)
        raise BandError(f"no --extra gives the band {name!r} (extra bands: "
                        f"{', '.join(self.names) or 'none'})")

    @property
    def has_slope(self) -> bool:
        """True when the extras give ``slope``, raw or from a ``dem`` band."""
        return "slope" in self.raw_names or DEM_BAND in self.raw_names

    def stack(self, image: npt.NDArray[np.generic], image_nodata: float | None, window: Window
              ) -> tuple[F32, tuple[str, ...], float]:
        """Image bands of a window followed by the extra bands, as one float32 stack.

        Args:
            image: The image bands of ``window``, (C, h, w), any dtype; they are named
                :attr:`image_bands` (the ``image_names`` given on creation).
            image_nodata: The image's nodata value (those pixels become NaN), or None.
            window: The window on the image grid.

        Returns:
            (float32 (C + len(names), h, w) with NaN nodata, all band names, NaN: the nodata
            value to pass to :meth:`~landslip.spectral.bands.BandSet.compute`).
        """
        img = image.astype(np.float32)
        if image_nodata is not None and not np.isnan(image_nodata):
            img[image == image.dtype.type(image_nodata)] = np.nan
        stacked = np.concatenate([img, self.read(window)], axis=0)
        return stacked, (*self.image_bands, *self.names), float("nan")


@dataclass(frozen=True)
class ModelInputs:
    """Where each raw band a model needs comes from: the image or the extra rasters.

    Attributes:
        image_set: The model's band set with ``required`` cut to the bands read from the image
            (for :func:`~landslip.inference.predict.match_bands`).
        extras: The extra inputs (not yet open; their :attr:`ExtraInputs.image_bands` are the
            image bands read), or None without ``--extra``.
    """

    image_set: BandSet
    extras: ExtraInputs | None


def model_inputs(band_set: BandSet, image: RasterInfo, band_names: Sequence[str] | None,
                 specs: Sequence[ExtraSpec | str], need_slope: bool = False) -> ModelInputs:
    """Split a model's raw bands between the image and the ``--extra`` rasters.

    A band is read from the image when the image has it (band descriptions or
    ``band_names``), else from an extra raster of that name, else computed from the ``dem``
    band when it is a terrain band. Everything is checked before any output is written.

    Args:
        band_set: The model's band set (from the bundle).
        image: The image.
        band_names: Names of the image bands overriding the descriptions, or None.
        specs: The ``--extra`` rasters.
        need_slope: A slope is needed besides the model's bands (``--min-slope``).

    Raises:
        BandError: A band neither the image nor an extra raster gives (the message says what
            ``--extra`` to add).
        InputError: ``need_slope`` without a DEM or slope raster.
    """
    parsed = [parse_extra(s) if isinstance(s, str) else s for s in specs]
    names = band_slots(image, band_names)  # refuses a --band-names of the wrong count
    from_image = [b for b in band_set.required if b in names]
    rest = [b for b in band_set.required if b not in names]
    if not parsed:
        if need_slope:
            raise InputError("--min-slope needs the terrain: add --extra dem=DEM.tif (or a "
                             "slope raster, --extra slope=SLOPE.tif)")
        if not rest or not all(names) or len(set(names)) != len(names):
            return ModelInputs(band_set, None)  # match_bands explains unnamed bands
    probe = ExtraInputs(parsed, image.grid)
    terrain = terrain_needed(rest, probe.raw_names)
    missing = [b for b in rest if b not in probe.raw_names and not (
        b in terrain and DEM_BAND in probe.raw_names)]
    if missing:
        raise BandError(
            f"the model's band set {band_set.spec!r} needs band(s) {', '.join(missing)}, which "
            f"neither {image.path} (bands {', '.join(n or '?' for n in names)}) nor --extra "
            f"({', '.join(probe.raw_names) or 'no bands'}) gives; add the raster, e.g. "
            "--extra pre=PRE.tif (pre_blue..pre_nir) or --extra dem=DEM.tif (dem, slope)"
        )
    if need_slope and not probe.has_slope:
        raise InputError("--min-slope needs the terrain: add --extra dem=DEM.tif (or a "
                         "slope raster, --extra slope=SLOPE.tif)")
    extras = ExtraInputs(parsed, image.grid, terrain, from_image)
    image_set = replace(band_set, required=tuple(from_image))
    return ModelInputs(image_set, extras)
