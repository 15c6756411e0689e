"""The one registry of band names, derived indices and band sets.

Raw bands are addressed by name: ``blue``, ``green``, ``red``, ``nir`` (and any other name a
dataset declares, such as Sentinel-2 ``b05`` or ``slope``). Derived bands are index expressions
over raw bands, such as ``ndvi = (nir-red)/(nir+red)``. A band set is an ordered list of band
names; the paper's four datasets have names (``bgrn``, ``bgr``, ``grn``, ``bg-ndvi``) and any
comma list such as ``blue,green,ndvi`` or one with an inline expression
``blue,green,(nir-red)/(nir+red)`` works too.

Training, evaluation and prediction all resolve band sets here (:func:`resolve_band_set`) and
compute model inputs with :meth:`BandSet.compute`, so the three can never disagree.

Defined values:
    * Division by zero in an expression gives 0 (for NDVI: a pixel with nir + red = 0).
    * A pixel that is nodata in any input band is nodata in every output band; it is returned as
      0 and flagged in the ``valid`` mask, so loss, metrics and statistics can skip it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from landslip.errors import BandError

__all__ = [
    "BAND_SETS",
    "DERIVED_BANDS",
    "RAW_BANDS",
    "BandSet",
    "normalize",
    "parse_expression",
    "resolve_band_set",
]

RAW_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir")
"""The four SPOT-7 multispectral bands, in the order landslip writes them."""

DERIVED_BANDS: dict[str, str] = {
    "ndvi": "(nir-red)/(nir+red)",
    "ndwi": "(green-nir)/(green+nir)",
    "brightness": "(blue+green+red)/3",
}
"""Named index expressions over raw bands."""

BAND_SETS: dict[str, tuple[str, ...]] = {
    "bgrn": ("blue", "green", "red", "nir"),
    "bgr": ("blue", "green", "red"),
    "grn": ("green", "red", "nir"),
    "bg-ndvi": ("blue", "green", "ndvi"),
    "rgb": ("red", "green", "blue"),
}
"""Named band sets: the paper's datasets (1) to (4), and ``rgb`` for 3-band true-colour data."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Array = npt.NDArray[np.float32]
_Evaluator = Callable[[dict[str, Array]], Array]


def _safe_div(a: Array, b: Array) -> Array:
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float32)
    np.divide(a, b, out=out, where=b != 0)
    return out


def parse_expression(expr: str) -> tuple[_Evaluator, tuple[str, ...]]:
    """Compile an index expression over band names into an evaluator.

    Supports ``+ - * /``, unary minus, parentheses, numbers and band names; nothing else (the
    expression is parsed, never ``eval``-ed). Division by zero yields 0.

    Args:
        expr: For example ``"(nir-red)/(nir+red)"``.

    Returns:
        (function from {band name: float32 array} to a float32 array, band names it reads).

    Raises:
        BandError: If the expression has anything but the allowed syntax.
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise BandError(f"cannot parse band expression {expr!r}: {exc.msg}") from exc
    names: list[str] = []

    def build(node: ast.AST) -> _Evaluator:
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Add | ast.Sub | ast.Mult | ast.Div
        ):
            left, right, op = build(node.left), build(node.right), node.op
            if isinstance(op, ast.Add):
                return lambda b: left(b) + right(b)
            if isinstance(op, ast.Sub):
                return lambda b: left(b) - right(b)
            if isinstance(op, ast.Mult):
                return lambda b: left(b) * right(b)
            return lambda b: _safe_div(left(b), right(b))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = build(node.operand)
            return lambda b: -inner(b)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            value = np.float32(node.value)
            return lambda b: np.full_like(next(iter(b.values())), value)
        if isinstance(node, ast.Name):
            name = node.id.lower()
            if name not in names:
                names.append(name)
            return lambda b: b[name]
        raise BandError(
            f"band expression {expr!r} may only use band names, numbers, + - * / and "
            "parentheses"
        )

    fn = build(tree.body)
    if not names:
        raise BandError(f"band expression {expr!r} names no band")
    return fn, tuple(names)


@dataclass(frozen=True)
class BandSet:
    """An ordered set of model input bands, raw or derived.

    Attributes:
        spec: The text it was resolved from (``"bg-ndvi"``, ``"blue,green,ndvi"``, ...).
        names: Output band names, in order (an inline expression is its own name).
        expressions: For each output band, its expression over raw bands, or None when raw.
        required: The raw bands needed to compute the set, in first-use order.
    """

    spec: str
    names: tuple[str, ...]
    expressions: tuple[str | None, ...]
    required: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def check_available(self, available: Sequence[str]) -> None:
        """Raise BandError unless every required raw band is in ``available``."""
        missing = [b for b in self.required if b not in available]
        if missing:
            raise BandError(
                f"band set {self.spec!r} needs band(s) {', '.join(missing)} but the data has "
                f"{', '.join(available) or 'no named bands'}; choose another band set or name "
                "the bands of the input (band descriptions or --band-names)"
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
                has it), or None.

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


def resolve_band_set(spec: str) -> BandSet:
    """Resolve a band set name or comma list into a :class:`BandSet`.

    Args:
        spec: A named set (``bgrn``, ``bgr``, ``grn``, ``bg-ndvi``, ``rgb``), or a comma list
            of band names, derived index names (``ndvi``) and inline expressions.

    Raises:
        BandError: For an empty spec, an unknown name or a bad expression; the message lists
            the valid names.
    """
    text = spec.strip().lower()
    if not text:
        raise BandError("empty band set; give a name such as bg-ndvi or a list like blue,green,red")
    items = BAND_SETS.get(text) or tuple(p.strip() for p in text.split(",") if p.strip())
    names: list[str] = []
    exprs: list[str | None] = []
    required: list[str] = []
    for item in items:
        if item in DERIVED_BANDS or not _NAME.match(item):
            expr = DERIVED_BANDS.get(item, item)
            _, reads = parse_expression(expr)
            names.append(item)
            exprs.append(expr)
            needed = reads
        elif "-" in item or item in ("",):
            raise BandError(f"unknown band {item!r}")
        else:
            names.append(item)
            exprs.append(None)
            needed = (item,)
        for r in needed:
            if r not in required:
                required.append(r)
    if len(set(names)) != len(names):
        raise BandError(f"band set {spec!r} names a band twice")
    if len(items) == 1 and items[0] not in RAW_BANDS and items[0] not in DERIVED_BANDS and (
        _NAME.match(items[0]) and "," not in text
    ):
        raise BandError(
            f"unknown band set {spec!r}; use one of {', '.join(BAND_SETS)} or a comma list of "
            f"bands ({', '.join(RAW_BANDS)}, {', '.join(DERIVED_BANDS)}, or an expression)"
        )
    return BandSet(spec=spec, names=tuple(names), expressions=tuple(exprs),
                   required=tuple(required))


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
    out = (bands - m) / np.where(s > 0, s, np.float32(1))
    return np.where(np.expand_dims(valid, axis), out, np.float32(0)).astype(np.float32)
