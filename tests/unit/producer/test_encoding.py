"""The vectorised batch encoder writes exactly the bytes fastavro/AvroSerializer write."""
from __future__ import annotations

import io

import fastavro
import numpy as np
import pytest
from hypothesis import given, strategies as st

from fraudpipe import contracts
from fraudpipe.avro import encode, parse_schema
from fraudpipe.config import ProducerConfig
from fraudpipe.errors import SerializationError
from producer.encoding import BatchEncoder, keys, zigzag_varints
from producer.generator import TransactionGenerator


def batch(count: int = 3000, seed: int = 9):
    gen = TransactionGenerator(ProducerConfig(), seed=seed, start_ms=1_700_000_000_000, clock="simulated")
    return next(gen.batches(count))


@pytest.mark.parametrize("version", [1, 2])
def test_frames_equal_fastavro_schemaless_frames(version):
    rows = batch()
    schema = contracts.transaction_schema_str(version)
    frames = BatchEncoder(4242, schema_version=version).frames(rows)
    assert len(frames) == len(rows)
    for frame, record in zip(frames, rows.records(version)):
        assert frame == encode(4242, schema, record)


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=50))
def test_zigzag_varints_match_fastavro_longs(values):
    groups, lengths = zigzag_varints(np.array(values, dtype=np.int64))
    schema = parse_schema('"long"')
    for value, row, length in zip(values, groups, lengths):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, value)
        assert row[:length].tobytes() == out.getvalue()


def test_keys_are_sender_accounts():
    rows = batch(100)
    assert [k.decode() for k in keys(rows)] == [r["sender_account"] for r in rows.records()]


def test_unknown_schema_version_is_rejected():
    with pytest.raises(SerializationError, match="version 3"):
        BatchEncoder(1, schema_version=3)
