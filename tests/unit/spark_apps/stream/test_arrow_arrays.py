"""The pandas-free array builders equal what pa.array builds from the same values."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from spark_apps.stream import arrow_arrays as aa


@pytest.mark.parametrize("arrow_type", [pa.int8(), pa.int32(), pa.int64(), pa.float64()])
def test_numbers_with_and_without_nulls(arrow_type):
    values = np.array([3, -1, 0, 7, 5])
    mask = np.array([False, True, False, False, True])
    assert aa.numbers(values, arrow_type).equals(pa.array(values, type=arrow_type))
    built = aa.numbers(values, arrow_type, mask)
    assert built.equals(pa.array(values, type=arrow_type, mask=mask))
    assert aa.to_numbers(built).tolist() == [3, 0, 0, 7, 0]
    assert aa.to_mask(built.slice(1, 3)).tolist() == [True, False, False]
    assert aa.to_numbers(built.slice(2)).tolist() == [0, 7, 0]


def test_booleans_strings_and_repeats():
    flags = np.array([True, False, True, True, False, False, True, False, True])
    assert aa.booleans(flags).equals(pa.array(flags))
    assert aa.strings(["a", "", "bé"]).equals(pa.array(["a", "", "bé"], type=pa.string()))
    assert aa.repeated("USD", pa.string(), 3).to_pylist() == ["USD"] * 3
    assert aa.repeated(4, pa.int32(), 2).equals(pa.array([4, 4], type=pa.int32()))
    assert aa.repeated(None, pa.string(), 2).to_pylist() == [None, None]
