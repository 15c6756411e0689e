"""Which bands of an image file carry data, and what they are called.

One rule for ``prepare``, ``import-patches`` and ``predict``:

* **Alpha** is never a data band. A band whose colour interpretation is ``alpha`` (a GeoTIFF
  with ``ExtraSamples = alpha``, an RGBA or LA PNG) is dropped, and pixels where it is 0 are
  nodata (label 255 in a dataset, nodata in prediction outputs).
* **Names** come from, in order: ``--band-names``; the band descriptions, when every data band
  has one; the colour interpretation, when every data band has a known colour (``red``,
  ``green``, ``blue``; so an RGB GeoTIFF is named ``red,green,blue`` in the file's own order,
  whatever that order is). Otherwise the names are unknown and the error asks for them
  without suggesting an order: a suggested order that is wrong (``blue,green,red`` for an RGB
  file) would silently swap bands.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from landslip.errors import BandError
from landslip.io.raster import RasterInfo
from landslip.spectral.bands import validate_band_names

__all__ = [
    "ALPHA",
    "COLOUR_NAMES",
    "alpha_band",
    "band_slots",
    "data_bands",
    "file_band_names",
    "image_band_names",
    "naming_hint",
]

log = logging.getLogger(__name__)

ALPHA = "alpha"
"""The colour interpretation of an alpha (transparency) band."""

COLOUR_NAMES = {"red": "red", "green": "green", "blue": "blue"}
"""GDAL colour interpretations that name a band, and the band name each gives."""


def data_bands(colorinterp: Sequence[str], count: int) -> tuple[int, ...]:
    """1-based indexes of the bands that carry data (every band but alpha bands).

    Args:
        colorinterp: One colour interpretation per band, lower case (may be empty: unknown).
        count: Number of bands.
    """
    if len(colorinterp) != count:
        return tuple(range(1, count + 1))
    return tuple(i for i, c in enumerate(colorinterp, start=1) if c != ALPHA)


def alpha_band(colorinterp: Sequence[str]) -> int | None:
    """1-based index of the (first) alpha band, or None."""
    for i, c in enumerate(colorinterp, start=1):
        if c == ALPHA:
            return i
    return None


def file_band_names(descriptions: Sequence[str | None], colorinterp: Sequence[str],
                    count: int) -> list[str] | None:
    """Names of the data bands of a file: descriptions, else colour interpretation, else None.

    Args:
        descriptions: One band description per band (None or empty where unset).
        colorinterp: One colour interpretation per band, lower case (may be empty).
        count: Number of bands.

    Returns:
        One lower-case name per data band (:func:`data_bands`, in file order), or None when the
        file does not name all of them.
    """
    bands = data_bands(colorinterp, count)
    desc = [descriptions[i - 1] if i - 1 < len(descriptions) else None for i in bands]
    if desc and all(d and d.strip() for d in desc):
        return [str(d).strip().lower() for d in desc]
    if len(colorinterp) == count:
        colours = [COLOUR_NAMES.get(colorinterp[i - 1]) for i in bands]
        if colours and all(colours) and len(set(colours)) == len(colours):
            return [str(c) for c in colours]
    return None


def naming_hint(n_bands: int, needed: Sequence[str] = ()) -> str:
    """How to name ``n_bands`` unnamed bands, without guessing their order.

    Args:
        n_bands: Number of data bands to name.
        needed: Band names a model or band set needs, mentioned as the names to use.
    """
    placeholder = ",".join(f"NAME{i}" for i in range(1, n_bands + 1))
    wanted = f" (the model needs {', '.join(needed)})" if needed else ""
    return (f"name the {n_bands} band(s) in the file's order with --band-names {placeholder}"
            f"{wanted}; check the order first (gdalinfo shows each band's wavelength or "
            "colour), since a wrong order silently swaps bands")


def band_slots(info: RasterInfo, band_names: Sequence[str] | None = None,
               option: str = "--band-names") -> list[str]:
    """The name of every band of a file, ``""`` for an alpha band or a band without a name.

    Args:
        info: The image.
        band_names: Names given by the user (``--band-names``): one per band, or one per data
            band (an alpha band need not be named); they win over the file's own names.
        option: The option's name, for messages.

    Returns:
        ``info.count`` names in file order.

    Raises:
        BandError: For invalid or repeated names, or a number that fits neither count.
    """
    bands = data_bands(info.colorinterp, info.count)
    slots = [""] * info.count
    if band_names is not None:
        names = list(validate_band_names(band_names, option))
        if len(names) == info.count:
            pairs = list(zip(range(1, info.count + 1), names, strict=True))
        elif len(names) == len(bands):
            pairs = list(zip(bands, names, strict=True))
        else:
            counts = (f"{len(bands)} data band(s) and an alpha band" if len(bands) < info.count
                      else f"{info.count} band(s)")
            raise BandError(f"{option} gives {len(names)} name(s) ({','.join(names)}) but "
                            f"{info.path} has {counts}; give one name per band, in order")
        for i, name in pairs:
            if i in bands:
                slots[i - 1] = name
        return slots
    named = file_band_names(info.descriptions, info.colorinterp, info.count)
    if named is not None:
        for i, name in zip(bands, named, strict=True):
            slots[i - 1] = name
        return slots
    for i in bands:  # partly described: keep the names there are
        d = info.descriptions[i - 1] if i - 1 < len(info.descriptions) else None
        slots[i - 1] = (d or "").strip().lower()
    return slots


def image_band_names(info: RasterInfo, band_names: Sequence[str] | None = None,
                     option: str = "--band-names") -> tuple[tuple[int, ...], list[str]]:
    """The data bands of an image and their names, every one named (``prepare``).

    Args:
        info: The image.
        band_names: ``--band-names`` (see :func:`band_slots`), or None for the file's names.
        option: The option's name, for messages.

    Returns:
        (1-based indexes of the data bands, one unique name per data band).

    Raises:
        BandError: When a data band has no name, names repeat, or ``band_names`` does not fit.
    """
    bands = data_bands(info.colorinterp, info.count)
    slots = band_slots(info, band_names, option)
    names = [slots[i - 1] for i in bands]
    if not all(names):
        raise BandError(f"the {len(bands)} band(s) of {info.path} have no names (band "
                        f"descriptions or colour interpretation); {naming_hint(len(bands))}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BandError(f"band name(s) {', '.join(twice)} appear twice in {info.path}; give "
                        f"each band its own name with {option}")
    if band_names is not None:
        own = file_band_names(info.descriptions, info.colorinterp, info.count)
        if own is not None and own != names:
            log.warning("%s: using %s %s instead of the file's band names %s", info.path,
                        option, ",".join(names), ",".join(own))
    return bands, names
