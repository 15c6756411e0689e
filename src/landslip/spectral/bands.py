"""The one registry of band names, derived indices and band sets, and the band-set grammar.

Raw bands are addressed by name: ``blue``, ``green``, ``red``, ``nir`` (and any other name a
dataset declares, such as Sentinel-2 ``b05``, ``slope`` or ``dem``). Derived bands are index
expressions over raw bands, such as ``ndvi = (nir-red)/(nir+red)``. A band set is an ordered
list of output bands; the paper's four datasets have names (``bgrn``, ``bgr``, ``grn``,
``bg-ndvi``), and any comma list of names, named sets and inline expressions works too.

Grammar of a band set (EBNF; case-insensitive, blanks around items and tokens ignored)::

    band_set   = item , { "," , item } ;
    item       = set_name | index_name | band_name | expression ;
    set_name   = "bgrn" | "bgr" | "grn" | "bg-ndvi" | "rgb" | "pre-bgrn" ;  (* BAND_SETS *)
    index_name = "ndvi" | "ndwi" | "brightness" | "pre_ndvi" | "dndvi" ;  (* DERIVED_BANDS *)
    band_name  = letter , { letter | digit | "_" } ;              (* a raw band of the data *)
    expression = term , { ( "+" | "-" ) , term } ;
    term       = factor , { ( "*" | "/" ) , factor } ;
    factor     = "-" , factor | number | band_name | index_name | "(" , expression , ")" ;
    number     = mantissa , [ "e" , [ "+" | "-" ] , digits ] ;
    mantissa   = digits , [ "." , [ digits ] ] | "." , digits ;

Meaning (every accepted string has exactly one):

* An item is read in this order: an item equal to a set name is that set, expanded in place
  (``bg-ndvi`` is always the set, never ``bg`` minus ``ndvi``); an index name is that derived
  band; any other single name is a raw band of the data (``slope``); anything else is an inline
  expression, whose output band is named by its text (``(nir-red)/(nir+red)``).
* Inside an expression a name is a raw band, or the derived band when it is an index name
  (``ndvi*2`` reads nir and red); a set name there is refused.
* Set and index names are reserved: a raw band cannot be called ``ndvi`` or ``bgrn``
  (:func:`validate_band_names`).
* A comma list is the concatenation of its items' bands. The comma is the only way to combine
  band sets with other inputs, because ``+`` is arithmetic: ``bgrn,slope`` is blue, green, red,
  nir, slope; ``bg-ndvi,dem`` is blue, green, ndvi, dem.
* An empty item (``a,,b``, a leading or trailing comma) and a band named twice are errors.

``str(band_set)`` is the canonical spec (the output names joined by commas), which resolves to
an equal :class:`BandSet`.

Extra inputs (``--extra`` of prepare and predict, :mod:`landslip.spectral.extras`) are raw
bands with fixed meanings, one name each wherever they come from (:data:`EXTRA_BANDS`):
``pre_blue`` .. ``pre_nir`` (a pre-event image), ``dem`` (elevation, metres), ``slope``
(degrees, computed from ``dem`` on the scene with a halo by :mod:`landslip.spectral.terrain`,
or the Landslide4Sense band of that name) and ``hillshade``. ``pre_ndvi`` and ``dndvi``
(post-event NDVI minus pre-event NDVI: negative where vegetation was lost) are derived from
them like ``ndvi``. Combine them with a spectral set by commas: ``bgrn,slope``,
``bg-ndvi,dndvi``, ``bgrn,pre-bgrn,slope``.

Training, evaluation and prediction all resolve band sets here (:func:`resolve_band_set`) and
compute model inputs with :meth:`BandSet.compute`, so the three can never disagree. Lists of
raw band names (``--band-names``) are parsed by :func:`parse_band_names`.

Defined values:
    * Division by zero in an expression gives 0 (for NDVI: a pixel with nir + red = 0).
    * A pixel that is nodata in any input band is nodata in every output band; it is returned as
      0 and flagged in the ``valid`` mask, so loss, metrics and statistics can skip it.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from landslip.errors import BandError

__all__ = [
    "BAND_SETS",
    "DERIVED_BANDS",
    "EXTRA_BANDS",
    "RAW_BANDS",
    "BandSet",
    "normalize",
    "parse_band_names",
    "parse_expression",
    "resolve_band_set",
    "validate_band_names",
]

RAW_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir")
"""The four SPOT-7 multispectral bands, in the order landslip writes them."""

DERIVED_BANDS: dict[str, str] = {
    "ndvi": "(nir-red)/(nir+red)",
    "ndwi": "(green-nir)/(green+nir)",
    "brightness": "(blue+green+red)/3",
    "pre_ndvi": "(pre_nir-pre_red)/(pre_nir+pre_red)",
    "dndvi": "ndvi-pre_ndvi",
}
"""Named index expressions over raw bands."""

BAND_SETS: dict[str, tuple[str, ...]] = {
    "bgrn": ("blue", "green", "red", "nir"),
    "bgr": ("blue", "green", "red"),
    "grn": ("green", "red", "nir"),
    "bg-ndvi": ("blue", "green", "ndvi"),
    "rgb": ("red", "green", "blue"),
    "pre-bgrn": ("pre_blue", "pre_green", "pre_red", "pre_nir"),
}
"""Named band sets: the paper's datasets (1) to (4), ``rgb`` for 3-band true-colour data, and
``pre-bgrn``, the four bands of a pre-event image."""

EXTRA_BANDS: dict[str, str] = {
    "pre_blue": "pre-event image, blue (same units as the post-event bands)",
    "pre_green": "pre-event image, green",
    "pre_red": "pre-event image, red",
    "pre_nir": "pre-event image, near infrared",
    "dem": "elevation, metres",
    "slope": "terrain slope, degrees (0 flat .. 90), from dem with a halo (Horn's gradient)",
    "hillshade": "cos of the incidence of light from azimuth 315, elevation 45 (0 .. 1)",
}
"""Raw band names with a fixed meaning beyond the image's own bands (one name, one meaning).

The Landslide4Sense importer's ``slope`` and ``dem`` are the benchmark's bands 13 and 14 as
stored in its HDF5 files (the benchmark's own scaling, not checked here)."""

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TOKEN = re.compile(
    r"(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)|(?P<name>[a-z][a-z0-9_]*)|(?P<op>[-+*/()])",
    re.ASCII,
)
_SYNTAX = "use band names, numbers, + - * / and parentheses"

Array = npt.NDArray[np.float32]
_Evaluator = Callable[[dict[str, Array]], Array]


def _safe_div(a: Array, b: Array) -> Array:
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float32)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _binary(op: str, left: _Evaluator, right: _Evaluator) -> _Evaluator:
    if op == "+":
        return lambda b: left(b) + right(b)
    if op == "-":
        return lambda b: left(b) - right(b)
    if op == "*":
        return lambda b: left(b) * right(b)
    return lambda b: _safe_div(left(b), right(b))


def _read(name: str) -> _Evaluator:
    return lambda b: b[name]


def _tokenize(expr: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of an expression; kind is number, name or op."""
    text = expr.lower()
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise BandError(
                f"cannot parse band expression {expr!r}: unexpected {text[pos]!r} at "
                f"position {pos + 1}; {_SYNTAX}"
            )
        tokens.append((match.lastgroup, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser of the ``expression`` rule of the module's grammar."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.pos = 0
        self.reads: list[str] = []

    def _error(self, what: str) -> BandError:
        return BandError(f"cannot parse band expression {self.expr!r}: {what}; {_SYNTAX}")

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise self._error("it ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def parse(self) -> _Evaluator:
        fn = self._expression()
        if self.pos < len(self.tokens):
            raise self._error(f"unexpected {self.tokens[self.pos][1]!r}")
        if not self.reads:
            raise BandError(f"band expression {self.expr!r} names no band; {_SYNTAX}")
        return fn

    def _expression(self) -> _Evaluator:
        return self._chain(("+", "-"), self._term)

    def _term(self) -> _Evaluator:
        return self._chain(("*", "/"), self._factor)

    def _chain(self, ops: tuple[str, str], operand: Callable[[], _Evaluator]) -> _Evaluator:
        """Operands joined by left-associative operators of one precedence level."""
        fn = operand()
        while self._peek() in ops:
            op = self._next()[1]
            fn = _binary(op, fn, operand())
        return fn

    def _factor(self) -> _Evaluator:
        kind, text = self._next()
        if text == "-":
            inner = self._factor()
            return lambda b: -inner(b)
        if text == "(":
            inner = self._expression()
            if self._peek() != ")":
                raise self._error("a parenthesis is not closed")
            self.pos += 1
            return inner
        if kind == "number":
            value = np.float32(float(text))
            return lambda b: np.full_like(next(iter(b.values())), value)
        if kind == "name":
            return self._name(text)
        raise self._error(f"unexpected {text!r}")

    def _name(self, name: str) -> _Evaluator:
        if name in BAND_SETS:
            raise BandError(
                f"band expression {self.expr!r} uses the band set {name!r}; expressions combine "
                "single bands (list sets with commas, e.g. bgrn,slope)"
            )
        if name in DERIVED_BANDS:
            fn, reads = parse_expression(DERIVED_BANDS[name])
        else:
            fn, reads = _read(name), (name,)
        self.reads.extend(r for r in reads if r not in self.reads)
        return fn


@functools.lru_cache(maxsize=256)
def parse_expression(expr: str) -> tuple[_Evaluator, tuple[str, ...]]:
    """Compile an index expression over band names into an evaluator.

    The ``expression`` rule of the module's grammar: ``+ - * /``, unary minus, parentheses,
    numbers and band names (an index name such as ``ndvi`` stands for its expression); nothing
    else (the text is parsed, never ``eval``-ed). Division by zero yields 0.

    Args:
        expr: For example ``"(nir-red)/(nir+red)"``.

    Returns:
        (function from {raw band name: float32 array} to a float32 array of the same shape,
        raw band names it reads in first-use order).

    Raises:
        BandError: If the expression has anything but the allowed syntax or names no band.
    """
    parser = _Parser(expr)
    return parser.parse(), tuple(parser.reads)


@dataclass(frozen=True)
class BandSet:
    """An ordered set of model input bands, raw or derived.

    Two band sets are equal when they compute the same bands (``spec`` is not compared), so
    ``resolve_band_set("bgrn") == resolve_band_set("blue,green,red,nir")``.

    Attributes:
        spec: The text it was resolved from (``"bg-ndvi"``, ``"blue,green,ndvi"``, ...).
        names: Output band names, in order (an inline expression is its own name).
        expressions: For each output band, its expression over raw bands (an index name in it
            stands for its index), or None when raw.
        required: The raw bands needed to compute the set, in first-use order.
    """

    spec: str = field(compare=False)
    names: tuple[str, ...]
    expressions: tuple[str | None, ...]
    required: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def __str__(self) -> str:
        """The canonical spec: output names joined by commas; it resolves to an equal set."""
        return ",".join(self.names)

    def check_available(self, available: Sequence[str]) -> None:
        """Raise BandError unless every required raw band is in ``available``.

        A missing name close to a set or index name (a typo such as ``bgnr``) is pointed out,
        since the grammar reads any unknown single name as a raw band.
        """
        missing = [b for b in self.required if b not in available]
        if not missing:
            return
        known = [*BAND_SETS, *DERIVED_BANDS]
        hints = [f"{m!r} is read as a raw band (did you mean {' or '.join(close)}?)"
                 for m in missing
                 if (close := difflib.get_close_matches(m, known, n=2, cutoff=0.6))]
        raise BandError(
            f"band set {self.spec!r} needs band(s) {', '.join(missing)} but the data has "
            f"{', '.join(available) or 'no named bands'}; "
            + (f"{'; '.join(hints)}; " if hints else "")
            + f"choose another band set (named sets: {', '.join(BAND_SETS)}) or name the bands "
            "of the input (band descriptions or --band-names)"
        )

    def compute(
        self,
        raw: npt.NDArray[np.generic],
        raw_names: Sequence[str],
        nodata: float | None = None,
    ) -> tuple[Array, npt.NDArray[np.bool_]]:
        """Compute the band set from raw bands.

        Args:
            raw: Raw bands, shape (C, H, W) or (N, C, H, W), any numeric dtype (reflectance or
                digital numbers; units are kept).
            raw_names: Name of each of the C raw bands.
            nodata: Value marking nodata in ``raw`` (a pixel is nodata if any required band
                has it), or None. NaN and infinite values are always nodata.

        Returns:
            (bands of shape (len(self), H, W) or (N, len(self), H, W), float32, with 0 at
            nodata pixels; valid mask of shape (H, W) or (N, H, W), bool).
        """
        lower = [n.lower() for n in raw_names]
        self.check_available(lower)
        axis = raw.ndim - 3
        if raw.shape[axis] != len(lower):
            raise BandError(
                f"the data has {raw.shape[axis]} bands but {len(lower)} band names were given"
            )
        take = {name: np.take(raw, lower.index(name), axis=axis).astype(np.float32)
                for name in self.required}
        spatial = next(iter(take.values())).shape
        valid = np.ones(spatial, dtype=bool)
        if nodata is not None:
            for arr in take.values():
                valid &= ~(np.isnan(arr) if np.isnan(nodata) else arr == np.float32(nodata))
        for arr in take.values():  # NaN and infinite values are nodata too
            valid &= np.isfinite(arr)
        outs: list[Array] = []
        for name, expr in zip(self.names, self.expressions, strict=True):
            if expr is None:
                outs.append(take[name])
            else:
                outs.append(parse_expression(expr)[0](take).astype(np.float32, copy=False))
        result = np.stack(outs, axis=axis)
        if not valid.all():
            result = np.where(np.expand_dims(valid, axis), result, np.float32(0))
        return result.astype(np.float32, copy=False), valid


def _refuse_empty(items: Sequence[str], what: str) -> None:
    """Raise BandError naming the first empty (blank) item of a comma list."""
    for i, item in enumerate(items, start=1):
        if not item.strip():
            listed = ",".join(items)
            raise BandError(
                f"{what} {listed!r} has an empty item ({i} of {len(items)}); separate the "
                "items with single commas, with no comma at the start or end"
            )


def _resolve_item(item: str) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(output name, expression or None, raw bands read) for each band of one list item."""
    if item in BAND_SETS:
        return [band for member in BAND_SETS[item] for band in _resolve_item(member)]
    if item in DERIVED_BANDS:
        expr = DERIVED_BANDS[item]
        return [(item, expr, parse_expression(expr)[1])]
    if _NAME.fullmatch(item):
        return [(item, None, (item,))]
    return [(item, item, parse_expression(item)[1])]


def resolve_band_set(spec: str) -> BandSet:
    """Resolve a band set spec (see the grammar in the module docstring) into a :class:`BandSet`.

    Args:
        spec: A named set (``bgrn``, ``bgr``, ``grn``, ``bg-ndvi``, ``rgb``), a raw band name
            (``slope``), an index name (``ndvi``), an inline expression, or a comma list of any
            of these (``bgrn,slope``; named sets are expanded in place).

    Raises:
        BandError: For an empty spec or item, a bad expression, or a band named twice.
    """
    text = spec.strip().lower()
    if not text:
        raise BandError("empty band set; give a name such as bg-ndvi or a list like blue,green,red")
    items = text.split(",")
    _refuse_empty(items, "band set")
    names: list[str] = []
    exprs: list[str | None] = []
    required: list[str] = []
    for item in items:
        for name, expr, reads in _resolve_item(item.strip()):
            names.append(name)
            exprs.append(expr)
            required.extend(r for r in reads if r not in required)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BandError(f"band set {spec!r} names band(s) {', '.join(twice)} twice; list each "
                        "band once (named sets expand to their bands)")
    return BandSet(spec=spec, names=tuple(names), expressions=tuple(exprs),
                   required=tuple(required))


def validate_band_names(names: Sequence[str], what: str = "band names") -> tuple[str, ...]:
    """Check and normalise the names of an image's raw bands, one per band in order.

    Names are stripped and lower-cased. Every name must be a ``band_name`` of the grammar (a
    letter, then letters, digits or ``_``) and not a reserved set or index name, so that a band
    set can address it; names must be unique.

    Args:
        names: One name per band, e.g. ``["Blue", "green", "red", "nir"]``.
        what: How the names are referred to in error messages (e.g. ``"--band-names"``).

    Returns:
        The normalised names.

    Raises:
        BandError: For an empty, invalid, reserved or repeated name.
    """
    _refuse_empty(names, what)
    out = tuple(n.strip().lower() for n in names)
    for name in out:
        if not _NAME.fullmatch(name):
            raise BandError(f"{what}: {name!r} is not a band name; use a letter followed by "
                            "letters, digits or _ (e.g. blue, b05, pre_nir)")
        if name in BAND_SETS or name in DERIVED_BANDS:
            kind = "band set" if name in BAND_SETS else "derived index"
            raise BandError(f"{what}: {name!r} is reserved for the {kind} of that name; "
                            "name the raw band differently")
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise BandError(f"{what}: {', '.join(twice)} named twice in {','.join(out)!r}; give "
                        "each band its own name")
    return out


def parse_band_names(text: str, what: str = "--band-names") -> tuple[str, ...]:
    """Parse a comma list of raw band names, as given to ``--band-names``.

    Args:
        text: For example ``"blue,green,red,nir"``.
        what: How the list is referred to in error messages.

    Returns:
        The names, stripped and lower-cased (:func:`validate_band_names`).

    Raises:
        BandError: For an empty list, an empty item (``a,,b``, a trailing comma), or an
            invalid, reserved or repeated name.
    """
    if not text.strip():
        raise BandError(f"{what} is empty; give one name per band, e.g. blue,green,red,nir")
    return validate_band_names(text.split(","), what)


def normalize(
    bands: Array, mean: Sequence[float], std: Sequence[float], valid: npt.NDArray[np.bool_]
) -> Array:
    """Standardise bands with per-band statistics; nodata pixels become 0.

    Args:
        bands: (C, H, W) or (N, C, H, W) float32, from :meth:`BandSet.compute`.
        mean: C per-band means (same units as ``bands``).
        std: C per-band standard deviations (> 0).
        valid: (H, W) or (N, H, W) bool mask of valid pixels.

    Returns:
        float32 array of the same shape: (x - mean) / std, and 0 where not valid.
    """
    axis = bands.ndim - 3
    shape = [1] * bands.ndim
    shape[axis] = -1
    m = np.asarray(mean, dtype=np.float32).reshape(shape)
    s = np.asarray(std, dtype=np.float32).reshape(shape)
    if m.size != bands.shape[axis] or s.size != bands.shape[axis]:
        raise BandError(
            f"{bands.shape[axis]} bands but {m.size} means and {s.size} standard deviations"
        )
    out = np.subtract(bands, m, dtype=np.float32)
    out /= np.where(s > 0, s, np.float32(1))
    np.copyto(out, np.float32(0), where=~np.expand_dims(valid, axis))  # no temporaries
    return out
