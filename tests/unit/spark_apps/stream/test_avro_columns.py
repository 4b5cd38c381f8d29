"""The columnar Avro decoder gives exactly fastavro's rows, and fastavro's verdicts on anything malformed."""
from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudpipe import avro, contracts
from fraudpipe.config import ProducerConfig
from fraudpipe.errors import StreamError
from producer.encoding import BatchEncoder
from producer.generator import TransactionGenerator
from spark_apps.stream import decode as sd
from spark_apps.stream.avro_columns import ColumnarDecoder, read_varints
from spark_apps.features import INPUT_COLUMNS

SCHEMAS = {1: sd.plain_longs(contracts.transaction_schema(1)), 2: sd.plain_longs(contracts.transaction_schema(2))}


def codec(reader_version: int) -> avro.AvroCodec:
    def lookup(schema_id: int):
        if schema_id not in SCHEMAS:
            raise KeyError(schema_id)
        return SCHEMAS[schema_id]

    return sd.make_codec(lookup, reader_version)


def fastavro_rows(values, reader_version: int):
    """The reference: fastavro, record by record -> (rows of decoded records, (index, reason) of rejected ones)."""
    reference = codec(reader_version)
    rows, rejected = [], []
    for i, value in enumerate(values):
        try:
            rows.append(reference.decode(value))
        except avro.SerializationError as exc:
            rejected.append((i, str(exc)))
    return rows, rejected


def batch_rows(values, reader_version: int, columns=None):
    """What the job's BatchDecoder yields for the same frames, in fastavro's terms."""
    out = sd.BatchDecoder(codec(reader_version), reader_version, columns).decode(
        [(b"k", v, i) for i, v in enumerate(values)], watermark_ms=0)
    table = out.batch.to_pylist()
    rows = []
    for row in table:
        if row[sd.KIND_COLUMN] != sd.KIND_TRANSACTION:
            continue
        row.pop(sd.KIND_COLUMN)
        row["event_time"] = int(row["event_time"].timestamp() * 1000)
        rows.append(row)
    return rows, [(r.offset, r.reason) for r in out.rejected]


def generated_frames(count: int, version: int) -> list[bytes]:
    gen = TransactionGenerator(ProducerConfig(), seed=5, start_ms=1_700_000_000_000, clock="simulated")
    return BatchEncoder(version, schema_version=version).frames(next(gen.batches(count)))


def test_producer_frames_of_v1_and_v2_decode_exactly_as_fastavro_and_all_in_bulk():
    for writer in (1, 2):
        values = generated_frames(3000, writer)
        for reader in (1, 2):
            columnar = ColumnarDecoder(SCHEMAS[reader], codec(reader).writer_schema)
            _, decoded = columnar.decode(values)
            assert len(decoded) == len(values)  # no fallback for well-formed producer frames
            assert batch_rows(values, reader) == fastavro_rows(values, reader)


def record(i: int, text: str, amount: int, device: str | None) -> dict:
    return {"transaction_id": f"t{i}{text}", "event_time": 1_700_000_000_000 + i * 7 - amount % 3,
            "sender_account": text, "receiver_account": text[::-1], "amount_minor": amount, "currency": text[:3],
            "transaction_type": ("PURCHASE", "OTHER", "PAYMENT")[i % 3], "status": ("APPROVED", "FAILED")[i % 2],
            "channel": "ATM", "device_id": device}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                          st.one_of(st.none(), st.text(max_size=5)), st.sampled_from([1, 2])), min_size=1, max_size=40))
def test_any_text_and_long_matches_fastavro(cases):
    values = [avro.encode(writer, contracts.transaction_schema(writer), record(i, text, amount, device))
              for i, (text, amount, device, writer) in enumerate(cases)]
    for reader in (1, 2):
        assert batch_rows(values, reader) == fastavro_rows(values, reader)


def test_poison_frames_get_fastavro_verdicts_and_good_neighbours_survive():
    good = generated_frames(200, 1) + generated_frames(200, 2)
    rng = random.Random(3)
    poison: list[bytes | None] = [None, b"", b"\x00\x00", b"\x01" + good[0][1:], avro.frame_header(99) + good[0][5:]]
    poison += [good[0][:cut] for cut in range(len(good[0]))]  # every truncation
    for _ in range(300):  # byte flips, including varint continuation bits and string lengths
        frame = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 3)):
            frame[rng.randrange(5, len(frame))] = rng.randrange(256)
        poison.append(bytes(frame))
    poison += [bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))) for _ in range(100)]
    poison.append(good[0][:5] + b"\xff" * 12)  # a varint longer than 64 bits
    poison.append(good[0][:5] + b"\x06\xc3\x28\xff" + good[0][9:])  # invalid UTF-8 in a string
    values = good + poison
    rng.shuffle(values)
    for reader in (1, 2):
        rows, rejected = batch_rows(values, reader)
        assert (rows, rejected) == fastavro_rows(values, reader)
        assert len(rejected) >= 100
        # skipped fields are still validated: the projection rejects exactly the same records
        assert batch_rows(values, reader, INPUT_COLUMNS) == ([project(r) for r in rows], rejected)


def project(row: dict) -> dict:
    return {name: row[name] for name in row if name in INPUT_COLUMNS}


def test_a_projection_builds_only_its_columns_and_equals_the_full_rows():
    values = generated_frames(2000, 1) + generated_frames(2000, 2)
    for reader in (1, 2):
        out = sd.BatchDecoder(codec(reader), reader, INPUT_COLUMNS).decode(
            [(b"k", v, i) for i, v in enumerate(values)], watermark_ms=0)
        assert out.batch.schema.names == [n for n in sd.output_schema(reader).names if n in (*INPUT_COLUMNS, sd.KIND_COLUMN)]
        full, _ = batch_rows(values, reader)
        assert batch_rows(values, reader, INPUT_COLUMNS) == ([project(r) for r in full], [])


def test_a_projection_must_name_schema_fields_and_keep_the_carrier_columns():
    with pytest.raises(StreamError, match="nope"):
        sd.output_schema(1, ["event_time", "sender_account", "nope"])
    with pytest.raises(StreamError, match="sender_account"):
        sd.output_schema(1, ["event_time", "amount_minor"])


def test_varints_stop_at_the_frame_end():
    buf = np.frombuffer(b"\x02\x80\x01\x80\x00", dtype=np.uint8)
    values, used, ok = read_varints(buf, np.array([0, 1, 3]), np.array([1, 3, 4]))
    assert values[:2].tolist() == [1, 64] and used[:2].tolist() == [1, 2]
    assert ok.tolist() == [True, True, False]  # the third runs past its end (4)
