"""Cloud-Optimized GeoTIFF: the layout of every raster landslip writes, and how viewers show it.

A raster is streamed window by window into a tiled GeoTIFF beside the target (as before), then
copied by GDAL's COG driver into the final layout: 256 x 256 tiles, DEFLATE with a predictor,
internal overviews down to one tile, the image file directory and the overview tiles ahead of
the full-resolution tiles, so a reader that fetches byte ranges (a web map server, QGIS over
HTTP, ``rio cogeo validate``) finds everything it needs in the first kilobytes. GDAL computes the
overviews and the copy block by block, so memory stays bounded by its block cache whatever the
raster size (``benchmarks/cog_memory.py``). The final file appears by rename only when it is
complete (:func:`landslip.io.atomic.atomic_path`).

With ``prebuilt=True`` (:func:`cog_target`; the pan-sharpened image uses it) the overviews are
built into the streamed file first (:func:`build_overviews`: GDAL's ``BuildOverviews`` with the
same levels and resampling as the COG driver's ``OVERVIEWS=AUTO``, the same pixels), and the COG
driver copies them (``OVERVIEWS=FORCE_USE_EXISTING``) instead of computing them into a
compressed temporary file of its own and reading them back: streamed uncompressed, every pixel
is compressed exactly once, in the final file, by GDAL's threads.

A :class:`RasterStyle` says how viewers should present a raster: the overview resampling
(``average`` for continuous data, ``nearest`` for masks and labels: a mode or average would
invent or erase classes), a colour table, and the scale/offset that turn stored codes into
physical values (the uint8 probability: ``p = code * 1/254``). Colour interpretation is set on
every band (:func:`color_interpretation`): a colour table makes one band ``palette``; bands
named red, green and blue are ``red``, ``green``, ``blue``; otherwise band 1 is ``gray`` and the
rest ``undefined``. No band is ever ``alpha`` (a 4-band blue/green/red/nir image must not lose
its near-infrared band to transparency in a viewer).

TIFF colour maps hold RGB only (TIFF 6.0): the alpha of :data:`LABEL_COLORS` is dropped in the
file, where nodata (255) is transparent by its nodata value and background (0) is black; the map
page (:mod:`landslip.inference.mapview`) uses the alpha.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from landslip.encoding import BACKGROUND, IGNORE, LANDSLIDE, PROBABILITY_SCALE
from landslip.errors import RasterIOError
from landslip.io.atomic import atomic_path

__all__ = [
    "COG_BLOCK",
    "COMPRESSIONS",
    "CONTINUOUS",
    "LABELS",
    "LABEL_COLORS",
    "LANDSLIDE_RGB",
    "CogCheck",
    "Compression",
    "RasterStyle",
    "apply_style",
    "build_overviews",
    "check_cog",
    "cog_target",
    "color_interpretation",
    "overview_factors",
    "probability_style",
    "write_cog",
]

log = logging.getLogger(__name__)

COG_BLOCK = 256
"""Tile size of every COG landslip writes, pixels (the GeoTIFF convention of the package)."""

Resampling = Literal["average", "nearest", "mode"]
Compression = Literal["deflate", "zstd"]
COMPRESSIONS: tuple[Compression, ...] = ("deflate", "zstd")
"""GeoTIFF compressions landslip writes: DEFLATE (default; every reader) or ZSTD (GDAL >= 2.3)."""
RGBA = tuple[int, int, int, int]

LANDSLIDE_RGB: tuple[int, int, int] = (227, 26, 28)
"""The colour of a landslide everywhere (mask and label colour tables, the map page)."""
LABEL_COLORS: Mapping[int, RGBA] = {
    BACKGROUND: (0, 0, 0, 0),
    LANDSLIDE: (*LANDSLIDE_RGB, 255),
    IGNORE: (0, 0, 0, 0),
}
"""Colour table of masks and labels: landslide red, background and ignore transparent."""


@dataclass(frozen=True)
class RasterStyle:
    """How viewers should present a raster: overview resampling, colours, scale.

    Attributes:
        overviews: Resampling of the internal overviews: ``average`` for continuous values
            (nodata is skipped), ``nearest`` or ``mode`` for classes.
        colormap: Colour table of a one-band uint8 raster, value -> (r, g, b, a); the band's
            colour interpretation becomes ``palette``.
        scale: Physical value per stored unit (GDAL's band scale), or None.
        offset: Physical value of the stored 0 (GDAL's band offset), or None.
        units: Unit of the physical value (GDAL's band unit type), or None.
    """

    overviews: Resampling = "average"
    colormap: Mapping[int, RGBA] | None = None
    scale: float | None = None
    offset: float | None = None
    units: str | None = None


CONTINUOUS = RasterStyle()
"""Images, probabilities in float, elevations: averaged overviews, no colour table."""
LABELS = RasterStyle(overviews="nearest", colormap=LABEL_COLORS)
"""Label rasters and landslide masks (0, 1, 255): nearest overviews, :data:`LABEL_COLORS`."""


def probability_style(dtype: str) -> RasterStyle:
    """The style of a probability raster: uint8 codes carry scale 1/254 (``p = code / 254``)."""
    if dtype == "uint8":
        return RasterStyle(scale=1.0 / PROBABILITY_SCALE, offset=0.0, units="probability")
    return RasterStyle(units="probability")


def color_interpretation(
    count: int, descriptions: Sequence[str | None] | None, palette: bool
) -> list[str]:
    """GDAL colour interpretation names for every band (never ``alpha``).

    Args:
        count: Number of bands.
        descriptions: Band names (descriptions) or None.
        palette: True when the (single) band has a colour table.

    Returns:
        One of ``palette``, ``red``, ``green``, ``blue``, ``gray``, ``undefined`` per band.
    """
    if palette and count == 1:
        return ["palette"]
    names = [(d or "").strip().lower() for d in (descriptions or [None] * count)]
    rgb = {"red", "green", "blue"}
    if rgb <= set(names) and all(names.count(c) == 1 for c in rgb):
        return [n if n in rgb else "undefined" for n in names]
    return ["gray"] + ["undefined"] * (count - 1)


def apply_style(ds: Any, style: RasterStyle, descriptions: Sequence[str | None] | None) -> None:
    """Set colour table, colour interpretation, scale, offset and units on an open dataset."""
    from rasterio.enums import ColorInterp

    palette = style.colormap is not None and ds.count == 1
    if palette and style.colormap is not None:
        ds.write_colormap(1, dict(style.colormap))
    ds.colorinterp = [ColorInterp[c] for c in color_interpretation(ds.count, descriptions,
                                                                   palette)]
    if style.scale is not None or style.offset is not None:
        ds.scales = [1.0 if style.scale is None else style.scale] * ds.count
        ds.offsets = [0.0 if style.offset is None else style.offset] * ds.count
    if style.units is not None:
        ds.units = [style.units] * ds.count


def overview_factors(height: int, width: int, block: int = COG_BLOCK) -> list[int]:
    """The overview levels of GDAL's COG driver (``OVERVIEWS=AUTO``): 2, 4, 8, ... until the
    overview, ``ceil(size / factor)`` pixels on each side, fits in one ``block`` tile."""
    factors: list[int] = []
    f = 1
    while -(-height // f) > block or -(-width // f) > block:
        f *= 2
        factors.append(f)
    return factors


def build_overviews(path: str | Path, style: RasterStyle) -> None:
    """Build the COG driver's overviews into the GeoTIFF ``path`` (in place, by GDAL).

    Levels :func:`overview_factors`, resampling ``style.overviews`` (nodata skipped), computed
    by GDAL's ``BuildOverviews`` as the COG driver computes them with ``OVERVIEWS=AUTO``
    (``tests/io/test_cog.py`` checks the overview pixels are equal), in GDAL's threads
    (``GDAL_NUM_THREADS``).

    Raises:
        RasterIOError: If GDAL fails.
    """
    import rasterio
    from rasterio.enums import Resampling

    try:
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(path, "r+") as ds:
            factors = overview_factors(ds.height, ds.width)
            if factors:
                ds.build_overviews(factors, Resampling[style.overviews])
    except Exception as exc:
        raise RasterIOError(f"cannot build the overviews of {path}: {exc}") from exc


def write_cog(
    src: str | Path, dst: str | Path, style: RasterStyle, bigtiff: bool, level: int | None = None,
    prebuilt: bool = False, compress: Compression = "deflate",
) -> None:
    """Copy a GeoTIFF into the Cloud-Optimized layout with GDAL's COG driver.

    Overviews are computed from ``src`` (nodata skipped) with ``style.overviews`` down to one
    tile, or copied from ``src`` when ``prebuilt`` (:func:`build_overviews`); tags, band
    descriptions, nodata, colour table and interpretation, scale and offset are copied. GDAL
    works block by block under its block cache (set the cache with
    :func:`landslip.io.gdal.gdal_env`) and compresses in all CPUs.

    Args:
        src: The streamed GeoTIFF.
        dst: The COG to write (not atomically: :func:`cog_target` renames it).
        style: Overview resampling.
        bigtiff: Force BigTIFF (else only when GDAL finds it needed).
        level: Compression level of the COG (None: GDAL's default, DEFLATE 6, ZSTD 9).
        prebuilt: ``src`` holds the overviews already (``OVERVIEWS=FORCE_USE_EXISTING``).
        compress: ``deflate`` or ``zstd`` (both with the predictor).

    Raises:
        RasterIOError: If GDAL fails.
    """
    import rasterio.shutil

    extra = {} if level is None else {"LEVEL": str(level)}
    try:
        rasterio.shutil.copy(
            str(src), str(dst), driver="COG", BLOCKSIZE=COG_BLOCK, COMPRESS=compress.upper(),
            PREDICTOR="YES", RESAMPLING=style.overviews.upper(),
            OVERVIEWS="FORCE_USE_EXISTING" if prebuilt else "AUTO",
            BIGTIFF="YES" if bigtiff else "IF_SAFER", NUM_THREADS="ALL_CPUS", **extra,
        )
    except Exception as exc:
        raise RasterIOError(f"cannot write the Cloud-Optimized GeoTIFF {dst}: {exc}") from exc


@contextmanager
def cog_target(
    path: str | Path, style: RasterStyle, bigtiff: bool, level: int | None = None,
    prebuilt: bool = False, compress: Compression = "deflate",
) -> Iterator[Path]:
    """Yield a temporary GeoTIFF path to stream into; on success it becomes the COG ``path``.

    The streamed file lies beside the target under a hidden name; when the block exits without
    an exception it is copied into the COG layout (:func:`write_cog`) under another hidden
    name, which is renamed to ``path``. Both temporary files are removed in every case. With
    ``prebuilt`` the overviews are built into the streamed file first (:func:`build_overviews`)
    and copied, not recomputed.
    """
    with atomic_path(path) as final_tmp:
        stream = final_tmp.with_name(final_tmp.name + ".stream.tif")
        try:
            yield stream
            if prebuilt:
                build_overviews(stream, style)
            write_cog(stream, final_tmp, style, bigtiff, level, prebuilt, compress)
        finally:
            stream.unlink(missing_ok=True)


@dataclass(frozen=True)
class CogCheck:
    """The result of :func:`check_cog`.

    Attributes:
        valid: True when the file is a valid Cloud-Optimized GeoTIFF.
        errors: What makes it invalid (empty when valid).
        warnings: What a COG reader would like better (for example missing overviews).
    """

    valid: bool
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def check_cog(path: str | Path) -> CogCheck:
    """Validate a GeoTIFF as a Cloud-Optimized GeoTIFF (rio-cogeo's rules, GDAL's layout).

    Args:
        path: The file.

    Returns:
        The :class:`CogCheck`.
    """
    from rio_cogeo.cogeo import cog_validate

    valid, errors, warnings = cog_validate(str(path), quiet=True)
    return CogCheck(bool(valid), tuple(errors), tuple(warnings))
