"""The band registry: the grammar (named sets, raw names, indices, expressions, comma lists),
defined values, errors, and ``--band-names`` parsing."""

from __future__ import annotations

import keyword
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from landslip.errors import BandError
from landslip.spectral.bands import (
    BAND_SETS,
    DERIVED_BANDS,
    RAW_BANDS,
    normalize,
    parse_band_names,
    parse_expression,
    resolve_band_set,
    validate_band_names,
)


def _raw() -> np.ndarray:
    # blue, green, red, nir for a 2 x 2 image
    return np.array([
        [[10, 20], [30, 0]],
        [[11, 21], [31, 0]],
        [[12, 22], [40, 0]],
        [[36, 66], [40, 0]],
    ], dtype=np.uint16)


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("bgrn", ("blue", "green", "red", "nir")),
        ("bgr", ("blue", "green", "red")),
        ("grn", ("green", "red", "nir")),
        ("bg-ndvi", ("blue", "green", "ndvi")),
        ("BGRN", ("blue", "green", "red", "nir")),
    ],
)
def test_named_sets_of_the_paper(spec: str, names: tuple[str, ...]) -> None:
    bs = resolve_band_set(spec)
    assert bs.names == names
    assert set(bs.required) <= set(RAW_BANDS)
    assert len(bs) == len(names)


def test_comma_list_and_inline_expression() -> None:
    bs = resolve_band_set("blue, green,ndvi")
    assert bs.names == ("blue", "green", "ndvi")
    assert bs.required == ("blue", "green", "nir", "red")
    inline = resolve_band_set("blue,(nir-red)/(nir+red)")
    assert inline.expressions[1] == "(nir-red)/(nir+red)"
    out, valid = inline.compute(_raw(), RAW_BANDS)
    named, _ = resolve_band_set("blue,ndvi").compute(_raw(), RAW_BANDS)
    np.testing.assert_array_equal(out, named)
    assert valid.all()


def test_compute_values_and_division_by_zero() -> None:
    out, _valid = resolve_band_set("bg-ndvi").compute(_raw(), RAW_BANDS)
    assert out.dtype == np.float32 and out.shape == (3, 2, 2)
    np.testing.assert_allclose(out[2, 0, 0], (36 - 12) / (36 + 12))
    np.testing.assert_allclose(out[2, 1, 0], 0.0)  # nir == red: 0 / 80
    assert out[2, 1, 1] == 0.0  # nir + red == 0: defined as 0
    np.testing.assert_array_equal(out[0], _raw()[0])


def test_nodata_makes_every_band_invalid() -> None:
    raw = _raw()
    raw[2, 0, 1] = 65535  # red nodata at (0, 1)
    out, valid = resolve_band_set("bgrn").compute(raw, RAW_BANDS, nodata=65535)
    assert not valid[0, 1] and valid.sum() == 3
    assert (out[:, 0, 1] == 0).all()
    # A band the set does not read does not invalidate the pixel.
    _out2, valid2 = resolve_band_set("blue,green").compute(raw, RAW_BANDS, nodata=65535)
    assert valid2.all()


def test_batched_input() -> None:
    raw = np.stack([_raw(), _raw()])
    out, valid = resolve_band_set("grn").compute(raw, RAW_BANDS)
    assert out.shape == (2, 3, 2, 2) and valid.shape == (2, 2, 2)


def test_errors_name_the_valid_choices() -> None:
    # An unknown single name is a raw band; a typo of a set name is pointed out when the data
    # lacks it.
    with pytest.raises(BandError, match=r"did you mean bgr or bgrn\?.*named sets: bgrn"):
        resolve_band_set("bgnr").check_available(RAW_BANDS)
    with pytest.raises(BandError, match="empty"):
        resolve_band_set("  ")
    with pytest.raises(BandError, match="twice"):
        resolve_band_set("blue,blue")
    with pytest.raises(BandError, match="band expression"):
        parse_expression("nir ** 2")
    with pytest.raises(BandError, match="cannot parse"):
        parse_expression("(nir-")
    with pytest.raises(BandError, match="needs band"):
        resolve_band_set("bgrn").compute(_raw()[:3], ("blue", "green", "red"))
    with pytest.raises(BandError, match="band names"):
        resolve_band_set("bgr").compute(_raw(), ("blue", "green", "red"))


def test_expression_is_not_eval() -> None:
    with pytest.raises(BandError):
        parse_expression("__import__('os').system('true')")


def test_normalize_zeroes_invalid_and_guards_zero_std() -> None:
    bands = np.ones((2, 2, 2), dtype=np.float32) * 3
    valid = np.array([[True, False], [True, True]])
    out = normalize(bands, [1.0, 3.0], [2.0, 0.0], valid)
    assert out[0, 0, 0] == 1.0 and out[0, 0, 1] == 0.0
    assert out[1, 0, 0] == 0.0  # std 0 is treated as 1
    with pytest.raises(BandError, match="means"):
        normalize(bands, [1.0], [1.0], valid)


def test_band_sets_registry_is_consistent() -> None:
    for name in BAND_SETS:
        assert resolve_band_set(name).names == BAND_SETS[name]


# ----------------------------------------------------------------------------- the grammar


@pytest.mark.parametrize(
    ("spec", "names", "required"),
    [
        # A single raw band name is a band set of one band (was refused, while "slope," passed).
        ("slope", ("slope",), ("slope",)),
        (" Slope ", ("slope",), ("slope",)),
        ("ndvi", ("ndvi",), ("nir", "red")),
        # Named sets expand in place in a comma list: how extra inputs join a spectral set.
        ("bgrn,slope", ("blue", "green", "red", "nir", "slope"),
         ("blue", "green", "red", "nir", "slope")),
        ("bg-ndvi,dem", ("blue", "green", "ndvi", "dem"), ("blue", "green", "nir", "red", "dem")),
        ("dem,bgr", ("dem", "blue", "green", "red"), ("dem", "blue", "green", "red")),
        # An index name inside an expression stands for its index.
        ("ndvi*2", ("ndvi*2",), ("nir", "red")),
        # The whole item "bg-ndvi" is the set; in parentheses it is arithmetic.
        ("(bg-ndvi)", ("(bg-ndvi)",), ("bg", "nir", "red")),
    ],
)
def test_grammar_examples(spec: str, names: tuple[str, ...], required: tuple[str, ...]) -> None:
    bs = resolve_band_set(spec)
    assert bs.names == names
    assert bs.required == required


@pytest.mark.parametrize(
    "spec", ["bgrn,", ",bgrn", "blue,,green", "blue, ,green", "slope,", ",", " , "]
)
def test_empty_items_are_refused(spec: str) -> None:
    # "bgrn," used to become a raw band named "bgrn", "slope," a one-band set.
    with pytest.raises(BandError, match="empty item"):
        resolve_band_set(spec)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("bgrn*2", "band set 'bgrn'"),
        ("nir # comment", "unexpected '#'"),
        ("nir**2", "unexpected '\\*'"),
        ("2blue", "unexpected 'blue'"),
        ("2*3", "names no band"),
        ("()", "unexpected '\\)'"),
        ("nir,red", "unexpected ','"),
    ],
)
def test_expression_errors(expr: str, message: str) -> None:
    with pytest.raises(BandError, match=message):
        parse_expression(expr)


def test_expression_precedence_and_associativity() -> None:
    b = {n: np.array([v], dtype=np.float32) for n, v in (("a", 8.0), ("b", 4.0), ("c", 2.0))}
    for expr, expected in [("a-b-c", 2.0), ("a/b/c", 1.0), ("a-b*c", 0.0), ("-a*b", -32.0),
                           ("(a-b)*c", 8.0), ("a--b", 12.0), ("a/(b-4)", 0.0), ("1e1*c", 20.0),
                           (".5*a", 4.0)]:
        assert parse_expression(expr)[0](b)[0] == expected, expr


_RESERVED = {*BAND_SETS, *DERIVED_BANDS}
raw_names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(
    lambda n: n not in _RESERVED
)
numbers = st.integers(0, 99).map(str) | st.sampled_from(["0.5", "2.", ".25", "1e1"])


def _expressions(leaves: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.recursive(
        leaves,
        lambda inner: (
            st.tuples(inner, st.sampled_from("+-*/"), inner).map("".join)
            | inner.map(lambda e: f"({e})")
            | inner.map(lambda e: f"-{e}")
        ),
        max_leaves=6,
    )


def _reads_a_band(expr: str) -> bool:
    return re.search(r"[a-z]", re.sub(r"(?<![a-z0-9_])[0-9.]+(e[0-9]+)?", "", expr)) is not None


# Inline expressions: not a bare name, not a set name, and reading at least one band.
expressions = _expressions(raw_names | st.sampled_from(sorted(DERIVED_BANDS)) | numbers).filter(
    lambda e: not re.fullmatch(r"[a-z][a-z0-9_]*", e) and e not in BAND_SETS and _reads_a_band(e)
)
items = (st.sampled_from(sorted(BAND_SETS)) | st.sampled_from(sorted(DERIVED_BANDS))
         | raw_names | expressions)


def _distinct(parts: list[str]) -> bool:
    names = [n for p in parts for n in resolve_band_set(p).names]
    return len(names) == len(set(names))


@given(items)
def test_every_item_resolves_and_round_trips(item: str) -> None:
    bs = resolve_band_set(item)
    again = resolve_band_set(str(bs))
    assert again == bs
    assert again.names == bs.names and again.expressions == bs.expressions
    assert again.required == bs.required


@given(st.lists(items, min_size=1, max_size=5))
def test_comma_list_is_the_concatenation_of_its_items(parts: list[str]) -> None:
    singles = [resolve_band_set(p) for p in parts]
    names = [n for s in singles for n in s.names]
    if len(names) != len(set(names)):
        with pytest.raises(BandError, match="twice"):
            resolve_band_set(",".join(parts))
        return
    bs = resolve_band_set(",".join(parts))
    assert bs.names == tuple(names)
    assert bs.expressions == tuple(e for s in singles for e in s.expressions)
    assert bs.required == tuple(dict.fromkeys(r for s in singles for r in s.required))
    # Blanks around items and upper case do not change the meaning.
    assert resolve_band_set(" , ".join(p.upper() for p in parts)) == bs
    assert resolve_band_set(str(bs)) == bs


@given(st.lists(items, max_size=4), st.data(), st.sampled_from(["", " ", "\t"]))
def test_any_empty_item_is_refused(parts: list[str], data: st.DataObject, blank: str) -> None:
    at = data.draw(st.integers(0, len(parts)))
    with pytest.raises(BandError, match="empty"):
        resolve_band_set(",".join([*parts[:at], blank, *parts[at:]]))


@given(_expressions(raw_names.filter(lambda n: not keyword.iskeyword(n)) | numbers).filter(
    lambda e: _reads_a_band(e) and "/" not in e))
def test_expressions_evaluate_like_python_arithmetic(expr: str) -> None:
    fn, reads = parse_expression(expr)
    rng = np.random.default_rng(0)
    bands = {n: rng.uniform(-2, 2, 5).astype(np.float32) for n in reads}
    expected = eval(expr, {"__builtins__": {}}, dict(bands))
    np.testing.assert_allclose(fn(bands), np.broadcast_to(expected, (5,)), rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------------------- --band-names


def test_parse_band_names_normalises() -> None:
    assert parse_band_names(" Blue,green , NIR") == ("blue", "green", "nir")
    assert parse_band_names("slope") == ("slope",)
    assert validate_band_names(["B05", "pre_nir"]) == ("b05", "pre_nir")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("blue,green,", "empty item \\(3 of 3\\)"),
        (",blue", "empty item \\(1 of 2\\)"),
        ("blue,,red", "empty item"),
        ("", "is empty"),
        ("blue,Blue", "blue named twice"),
        ("blue,ndvi", "reserved for the derived index"),
        ("bgrn", "reserved for the band set"),
        ("red-edge", "not a band name"),
    ],
)
def test_parse_band_names_refuses(text: str, message: str) -> None:
    with pytest.raises(BandError, match=message) as info:
        parse_band_names(text)
    assert str(info.value).startswith("--band-names")
    assert "\\n" not in str(info.value)


@given(st.lists(raw_names, min_size=1, max_size=6, unique=True), st.data())
def test_band_names_round_trip_and_refuse_empty(names: list[str], data: st.DataObject) -> None:
    assert parse_band_names(",".join(names)) == tuple(names)
    at = data.draw(st.integers(0, len(names)))
    with pytest.raises(BandError, match="empty"):
        parse_band_names(",".join([*names[:at], "", *names[at:]]))
    with pytest.raises(BandError, match="empty"):
        validate_band_names([*names[:at], " ", *names[at:]])
