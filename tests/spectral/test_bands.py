"""The band registry: named sets, comma lists, expressions, defined values, errors."""

from __future__ import annotations

import numpy as np
import pytest

from landslip.errors import BandError
from landslip.spectral.bands import (
    BAND_SETS,
    RAW_BANDS,
    normalize,
    parse_expression,
    resolve_band_set,
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
    with pytest.raises(BandError, match="bgrn"):
        resolve_band_set("rainbow")
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
