"""The Kafka source's pure parts: budgets, the watermark from the offsets log, decoding, carriers."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest

from fraudpipe import avro, contracts
from fraudpipe.errors import StreamError
from spark_apps.stream import decode as sd
from spark_apps.stream.kafka_source import KafkaStreamReader, SourceOptions, batch_watermark, share_budget

MINUTE = 60_000


def options(**overrides) -> SourceOptions:
    base = {"bootstrap_servers": "127.0.0.1:1", "registry_url": "http://127.0.0.1:1", "max_records_per_trigger": "10"}
    return SourceOptions.parse({**base, **overrides})


def record(i: int, event_ms: int, **extra) -> dict:
    return {"transaction_id": f"t{i}", "event_time": event_ms, "sender_account": f"S{i % 3}",
            "receiver_account": f"R{i}", "amount_minor": 100 + i, "currency": "USD", "transaction_type": "PURCHASE",
            "status": "DECLINED" if i % 2 else "APPROVED", "channel": "ONLINE", **extra}


SCHEMAS = {1: sd.plain_longs(contracts.transaction_schema(1)), 2: sd.plain_longs(contracts.transaction_schema(2))}


def frame(schema_id: int, rec: dict) -> bytes:
    return avro.encode(schema_id, contracts.transaction_schema(schema_id), rec)


def test_budget_is_shared_fairly_and_short_partitions_give_way():
    assert share_budget({0: 0, 1: 0}, {0: 100, 1: 100}, 10) == {0: 5, 1: 5}
    assert share_budget({0: 0, 1: 50}, {0: 2, 1: 100}, 10) == {0: 2, 1: 58}
    assert share_budget({0: 7, 1: 3}, {0: 7, 1: 3}, 10) == {0: 7, 1: 3}
    assert sum(share_budget({0: 0, 1: 0, 2: 0}, {0: 9, 1: 9, 2: 9}, 10).values()) == 10


def test_options_need_broker_and_registry():
    with pytest.raises(StreamError, match="registry_url"):
        SourceOptions.parse({"bootstrap_servers": "x"})
    assert options().topic == contracts.TRANSACTIONS_TOPIC
    assert options().dlq_topic == contracts.STREAM_DLQ_TOPIC


def test_the_pickled_reader_carries_no_clients():
    reader = KafkaStreamReader(options())
    reader._consumer = object()  # as after latestOffset on the driver
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._consumer is None and clone.options == reader.options


def test_batch_watermark_comes_from_the_offsets_log_entry_of_that_batch(tmp_path):
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    for batch, (watermark, end) in enumerate([(0, {"0": 5}), (90_000, {"0": 9}), (150_000, {"0": 12})]):
        meta = {"batchWatermarkMs": watermark, "batchTimestampMs": 1}
        (offsets / str(batch)).write_text(f"v1\n{json.dumps(meta)}\n{json.dumps(end)}")
    assert batch_watermark(str(tmp_path), {"0": 12}) == 150_000
    assert batch_watermark(str(tmp_path), {"0": 9}) == 90_000
    assert batch_watermark(str(tmp_path), {"0": 99}) == 0
    assert batch_watermark("", {"0": 12}) == 0


def test_a_record_is_late_exactly_when_its_window_ended_by_the_watermark():
    watermark = 10 * MINUTE
    times = np.array([9 * MINUTE - 1, 9 * MINUTE, 10 * MINUTE - 1, 10 * MINUTE, 11 * MINUTE])
    assert sd.window_end_ms(times).tolist() == [9 * MINUTE, 10 * MINUTE, 10 * MINUTE, 11 * MINUTE, 12 * MINUTE]
    assert sd.late_mask(times, watermark).tolist() == [True, True, True, False, False]
    assert not sd.late_mask(times, 0).any()  # no watermark before the first batch


def test_schema_is_derived_from_schema_avsc():
    names = [f.name for f in sd.output_schema(1)]
    assert names == [*contracts.transaction_field_names(1), sd.KIND_COLUMN]
    assert "device_id string" in sd.spark_ddl(2) and "device_id" not in sd.spark_ddl(1)
    assert sd.output_schema(1).field("event_time").type == pa.timestamp("us", tz="UTC")


def decoder(version: int = 1) -> sd.BatchDecoder:
    def lookup(schema_id: int):
        if schema_id not in SCHEMAS:
            raise KeyError(schema_id)
        return SCHEMAS[schema_id]

    return sd.BatchDecoder(sd.make_codec(lookup, version), version)


def test_v1_and_v2_writers_decode_to_the_reader_schema_and_garbage_is_rejected():
    base = 100 * MINUTE
    records = [(b"k", frame(1, record(0, base)), 0), (b"k", frame(2, record(1, base + 5, device_id="D1")), 1),
               (b"g", b"garbage", 2), (None, None, 3), (b"u", avro.frame_header(77) + b"\x02", 4)]
    out = decoder(1).decode(records, watermark_ms=0)
    table = out.batch.to_pydict()
    assert out.batch.schema == sd.output_schema(1)
    assert table["transaction_id"][:2] == ["t0", "t1"]
    assert table[sd.KIND_COLUMN] == [sd.KIND_TRANSACTION] * 2 + [sd.KIND_DLQ] * 3
    assert [r.offset for r in out.rejected] == [2, 3, 4]
    assert "magic byte" in out.rejected[0].reason and "unknown schema id 77" in out.rejected[2].reason
    assert table["event_time"][0].timestamp() * 1000 == base
    v2 = decoder(2).decode(records[:2], watermark_ms=0).batch.to_pydict()
    assert v2["device_id"] == [None, "D1"]  # v1 writers resolve to the reader's default


def test_late_and_dlq_records_become_sender_less_carriers_just_past_the_watermark():
    watermark = 10 * MINUTE
    records = [(b"k", frame(1, record(0, 9 * MINUTE + 5)), 0), (b"k", frame(1, record(1, 10 * MINUTE + 5)), 1),
               (b"g", b"\x01bad", 2)]
    out = decoder().decode(records, watermark_ms=watermark)
    table = out.batch.to_pydict()
    assert out.late == 1
    assert table[sd.KIND_COLUMN] == [sd.KIND_LATE, sd.KIND_TRANSACTION, sd.KIND_DLQ]
    assert table["sender_account"] == [None, "S1", None]
    stamps = [int(t.timestamp() * 1000) for t in table["event_time"]]
    assert stamps == [watermark + 1, 10 * MINUTE + 5, watermark + 1]
    assert not sd.late_mask(np.array(stamps), watermark).any()  # carriers ride an open window


def test_only_record_errors_are_skipped_to_the_dlq():
    assert sd.classify_decode_error(avro.SerializationError("bad frame"))
    assert not sd.classify_decode_error(StreamError("registry down"))
    with pytest.raises(StreamError):
        def failing(_: int):
            raise StreamError("registry unreachable")

        sd.BatchDecoder(sd.make_codec(failing)).decode([(b"k", frame(1, record(0, 1)), 0)], watermark_ms=0)


DECODE_IN_A_FRESH_INTERPRETER = """
import sys
from tests.unit.spark_apps.stream.test_kafka_source import MINUTE, SCHEMAS, frame, record
from spark_apps.stream import decode as sd
from spark_apps.features import INPUT_COLUMNS

def lookup(schema_id):
    return SCHEMAS[schema_id]

watermark = 10 * MINUTE
records = [(b"k", frame(1, record(0, 9 * MINUTE)), 0), (b"k", frame(2, record(1, 11 * MINUTE, device_id="D")), 1),
           (b"k", frame(1, record(2, 11 * MINUTE)), 2), (b"g", b"garbage", 3)]
for version, columns in ((1, INPUT_COLUMNS), (2, None)):
    out = sd.BatchDecoder(sd.make_codec(lookup, version), version, columns).decode(records, watermark_ms=watermark)
    assert out.batch.num_rows == 4 and out.late == 1 and len(out.rejected) == 1, out
print("pandas" in sys.modules)
"""


def test_decoding_a_batch_does_not_import_pandas_into_the_worker():
    """Spark's Python workers run this decoding; pandas there would only cost memory (~45 MB each)."""
    import subprocess
    import sys

    from fraudpipe.contracts import PROJECT_ROOT

    result = subprocess.run([sys.executable, "-c", DECODE_IN_A_FRESH_INTERPRETER], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
