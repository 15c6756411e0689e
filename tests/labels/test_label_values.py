"""``--landslide-values``: which label codes mean landslide; safe hints otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from landslip.errors import InputError, LabelError
from landslip.labels.values import check_threshold_mask, labels_from_values, parse_landslide_values


def test_parse() -> None:
    assert parse_landslide_values(None) is None
    assert parse_landslide_values("1") == (1,)
    assert parse_landslide_values(" 1, 2 ") == (1, 2)
    for bad in ("", "1,,2", "a", "1.5", "1,1"):
        with pytest.raises(InputError, match="--landslide-values"):
            parse_landslide_values(bad)


def test_class_codes_are_mapped() -> None:
    codes = np.array([[0, 1, 2], [3, 255, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(labels_from_values(codes, (1,), "x"),
                                  [[0, 1, 0], [0, 255, 1]])
    np.testing.assert_array_equal(labels_from_values(codes, (1, 2), "x"),
                                  [[0, 1, 1], [0, 255, 1]])
    np.testing.assert_array_equal(labels_from_values(codes, (255,), "x"),
                                  [[0, 0, 0], [0, 1, 0]])
    wide = np.array([[0, 1000], [7, 1000]], dtype=np.int32)
    np.testing.assert_array_equal(labels_from_values(wide, (1000,), "x"), [[0, 1], [0, 1]])


def test_unknown_codes_are_refused_with_a_hint_that_drops_nothing() -> None:
    codes = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    with pytest.raises(LabelError) as err:
        labels_from_values(codes, None, "lab.tif")
    text = str(err.value)
    assert "values 2, 3 besides 0, 1 and 255" in text and "--landslide-values" in text
    assert "threshold" not in text  # would silently drop classes 1-3
    np.testing.assert_array_equal(labels_from_values(codes[:, :2], None, "x"), [[0, 1]])


def test_threshold_reading_that_would_empty_a_mask_is_refused() -> None:
    with pytest.raises(LabelError, match="--mask-mode labels"):
        check_threshold_mask(np.array([[0, 1]], dtype=np.uint8), "m.png")
    with pytest.raises(LabelError, match="--landslide-values"):
        check_threshold_mask(np.array([[0, 2]], dtype=np.uint8), "m.png")
    check_threshold_mask(np.array([[0, 255]], dtype=np.uint8), "m.png")
    check_threshold_mask(np.zeros((2, 2), dtype=np.uint8), "m.png")
    check_threshold_mask(np.array([[0, 1, 200]], dtype=np.uint8), "m.png")
