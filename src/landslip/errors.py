"""The exception hierarchy of landslip.

Every error raised on purpose by landslip derives from :class:`LandslipError`, so a caller
can catch them all at once; the CLI turns any of them into a one-line message and exit code 2.
Following rasterio, subclasses also inherit the matching built-in exception (an I/O problem is
also an :class:`OSError`, a bad value also a :class:`ValueError`), so generic handlers work too.
Messages say what was expected, what was found and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BandError",
    "CRSMismatchError",
    "ConfigError",
    "DatasetError",
    "DriftError",
    "GridError",
    "InputError",
    "Interrupted",
    "LabelError",
    "LandslipError",
    "ModelError",
    "OutputError",
    "RasterIOError",
    "VectorIOError",
]


class LandslipError(Exception):
    """Root of every error landslip raises on purpose."""


class InputError(LandslipError, ValueError):
    """A user-supplied value or file content is invalid."""


class ConfigError(InputError):
    """A configuration file or option is invalid (unknown key, wrong type, bad range)."""


class GridError(InputError):
    """Two rasters do not share a compatible grid, or a window lies outside a grid."""


class CRSMismatchError(GridError):
    """Two datasets are in different coordinate reference systems and were not reconciled."""


class BandError(InputError):
    """A band name, band set or index expression cannot be resolved."""


class LabelError(InputError):
    """Landslide labels are missing, empty, of the wrong geometry type, or off the image."""


class DatasetError(InputError):
    """A dataset folder is missing, incomplete or inconsistent."""


class ModelError(InputError):
    """A model name, model bundle or input shape is invalid."""


class RasterIOError(LandslipError, OSError):
    """A raster cannot be opened, read or written."""


class VectorIOError(LandslipError, OSError):
    """A vector file cannot be opened, read or written."""


class DriftError(InputError):
    """The input is far outside the data the model was trained on (``--strict``)."""


class OutputError(LandslipError, OSError):
    """An output location cannot be written (read-only, no permission, no space, not a folder)."""


class Interrupted(KeyboardInterrupt):
    """The user interrupted a run (Ctrl-C); the message says how to resume.

    A :class:`KeyboardInterrupt`, not a :class:`LandslipError`: the CLI prints the message and
    exits with 130, the shell's code for SIGINT.
    """
