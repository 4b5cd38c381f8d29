"""Arrow arrays from numpy without `pa.array`, so the stream's Python workers never import pandas.

pyarrow's `pa.array` and `pa.scalar` ask its lazy pandas shim whether the input is a pandas
object, and that imports pandas (~45 MB of RSS) into every Spark Python worker that decodes
Kafka records, though nothing there uses it. Arrays built from buffers skip the shim.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

_NUMPY = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
          pa.float64(): np.float64}


def _validity(mask: np.ndarray | None, n: int) -> pa.Buffer | None:
    """Arrow's validity bitmap from a numpy `mask` (True = null), or None when nothing is null."""
    if mask is None or not mask.any():
        return None
    return pa.py_buffer(np.packbits(~mask.astype(bool), bitorder="little"))


def numbers(values: np.ndarray, arrow_type: pa.DataType, mask: np.ndarray | None = None) -> pa.Array:
    """A fixed-width numeric Arrow array holding `values` (cast to the type's width); `mask` True = null."""
    data = np.ascontiguousarray(values, dtype=_NUMPY[arrow_type])
    return pa.Array.from_buffers(arrow_type, len(data), [_validity(mask, len(data)), pa.py_buffer(data)])


def booleans(values: np.ndarray) -> pa.Array:
    """A boolean Arrow array of a numpy bool array (no nulls)."""
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def strings(values: Sequence[str]) -> pa.Array:
    """A string Arrow array of Python strings (no nulls)."""
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.StringArray.from_buffers(len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)))


def repeated(value: object, arrow_type: pa.DataType, n: int) -> pa.Array:
    """`n` times `value` (None, an int, or a str) as an array of `arrow_type`."""
    if value is None:
        return pa.nulls(n, arrow_type)
    if pa.types.is_string(arrow_type):
        return strings([str(value)]).take(numbers(np.zeros(n, dtype=np.int64), pa.int64()))
    return numbers(np.full(n, value), arrow_type)


def to_numbers(array: pa.Array) -> np.ndarray:
    """A fixed-width numeric Arrow array as a numpy view of its data (nulls as 0).

    Array.to_numpy, even zero-copy, asks the pandas shim too.
    """
    dtype = np.dtype(np.float64 if pa.types.is_floating(array.type) else f"i{array.type.bit_width // 8}")
    values = np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
    if array.null_count:  # (fill_null would build a pa.scalar: the pandas shim again)
        values = np.where(to_mask(array), 0, values)
    return values


def to_mask(array: pa.Array) -> np.ndarray:
    """True where `array` is null."""
    bitmap = array.buffers()[0]
    if bitmap is None:
        return np.zeros(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return ~bits[array.offset:array.offset + len(array)].astype(bool)
