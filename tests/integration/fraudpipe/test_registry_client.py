"""The one schema-by-id client (fraudpipe/registry_client.py) against our real registry server.

Both decoders rely on the same rules: an unknown id is the record's fault (DLQ), a registry
that is down or failing is the caller's outage error (never a skipped record), each id is
fetched once, and a writer schema with references decodes with the referenced types.
"""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe import avro, contracts
from fraudpipe.broker import free_port
from fraudpipe.connect.converters import AVRO_CONVERTER, RegistryUnavailableError, make_converter
from fraudpipe.errors import StreamError, UnknownSchemaIdError
from fraudpipe.registry.server import RegistryServer
from fraudpipe.registry_client import RegistrySchemas
from spark_apps.stream import decode as sd
from spark_apps.stream import jvm_source
from tests.fixtures.core import QuietHandler, loopback_http

pytestmark = pytest.mark.integration

NS = "com.example.shared"
MERCHANT = {"type": "record", "name": "Merchant", "namespace": NS, "fields": [
    {"name": "merchant_id", "type": "string"},
    {"name": "category", "type": {"type": "enum", "name": "Category", "symbols": ["GROCERY", "TRAVEL"]}},
]}
EVENT_MS = 1_700_000_000_000


def transaction_with_merchant() -> dict[str, Any]:
    """Transaction v1 plus an optional `merchant` whose record type another subject defines."""
    schema = contracts.transaction_schema(1)
    return {**schema, "fields": [*schema["fields"],
                                 {"name": "merchant", "type": ["null", f"{NS}.Merchant"], "default": None}]}


def record(n: int, *, merchant: bool) -> dict[str, Any]:
    return {"transaction_id": f"t-{n}", "event_time": datetime.fromtimestamp(EVENT_MS / 1000 + n, tz=timezone.utc),
            "sender_account": "S1", "receiver_account": f"R{n}", "amount_minor": 1000 + n, "currency": "EUR",
            "transaction_type": "PURCHASE", "status": "APPROVED", "channel": "POS",
            "merchant": {"merchant_id": f"m-{n}", "category": "TRAVEL"} if merchant else None}


@pytest.fixture()
def referencing_frames(registry: RegistryServer) -> tuple[int, list[bytes]]:
    """Frames written by confluent-kafka's AvroSerializer with a writer schema that has a reference."""
    client = SchemaRegistryClient({"url": registry.url})
    merchants = f"merchant-{uuid.uuid4().hex[:12]}"
    client.register_schema(merchants, Schema(json.dumps(MERCHANT), "AVRO"))
    writer = Schema(json.dumps(transaction_with_merchant()), "AVRO", [SchemaReference(f"{NS}.Merchant", merchants, 1)])
    topic = f"refs-{uuid.uuid4().hex[:12]}"
    serialize = AvroSerializer(client, writer)  # registers <topic>-value with its reference
    context = SerializationContext(topic, MessageField.VALUE)
    frames = [serialize(record(n, merchant=n % 2 == 0), context) for n in range(4)]
    schema_id = client.get_latest_version(contracts.value_subject(topic)).schema_id
    assert {avro.split_frame(f)[0] for f in frames} == {schema_id}
    return schema_id, frames


def test_a_referencing_writer_schema_decodes_in_the_stream_decoder(registry: RegistryServer, referencing_frames) -> None:
    schema_id, frames = referencing_frames
    decoder = sd.BatchDecoder(sd.make_codec(sd.registry_lookup(registry.url), 1), 1)
    out = decoder.decode([(b"k", frame, offset) for offset, frame in enumerate(frames)], watermark_ms=0)
    assert out.rejected == []
    rows = out.batch.to_pydict()
    assert rows["transaction_id"] == ["t-0", "t-1", "t-2", "t-3"]
    assert rows["amount_minor"] == [1000, 1001, 1002, 1003]
    assert [int(t.timestamp() * 1000) for t in rows["event_time"]] == [EVENT_MS + 1000 * n for n in range(4)]
    assert rows[sd.KIND_COLUMN] == [sd.KIND_TRANSACTION] * 4


def test_a_referencing_writer_schema_decodes_in_the_connect_converter(registry: RegistryServer,
                                                                        referencing_frames) -> None:
    _, frames = referencing_frames
    convert = make_converter(AVRO_CONVERTER, {"schema.registry.url": registry.url})
    values = [convert(frame) for frame in frames]
    assert [v["merchant"] for v in values] == [{"merchant_id": "m-0", "category": "TRAVEL"}, None,
                                               {"merchant_id": "m-2", "category": "TRAVEL"}, None]
    assert [v["transaction_id"] for v in values] == ["t-0", "t-1", "t-2", "t-3"]


def test_the_jvm_source_plans_a_referencing_writer_schema_self_contained(registry: RegistryServer,
                                                                           referencing_frames) -> None:
    schema_id, _ = referencing_frames
    planned = jvm_source.plan_writer_schemas(registry.url, 1, new_ids=(schema_id,))
    writer = json.loads(planned.decodable[schema_id])  # what from_avro gets: Merchant defined inside
    merchant = next(f for f in writer["fields"] if f["name"] == "merchant")
    assert merchant["type"][1]["fields"][0]["name"] == "merchant_id"
    assert merchant["type"][1]["type"] == "record" and schema_id not in planned.undecodable


def test_an_unknown_id_is_the_records_fault_in_both_callers(registry: RegistryServer) -> None:
    frame = avro.frame_header(987_654) + b"\x02"
    decoder = sd.BatchDecoder(sd.make_codec(sd.registry_lookup(registry.url), 1), 1)
    out = decoder.decode([(b"k", frame, 7)], watermark_ms=0)
    assert [(r.offset, r.error_class) for r in out.rejected] == [(7, "UnknownSchemaIdError")]
    with pytest.raises(UnknownSchemaIdError, match="unknown schema id 987654"):
        make_converter(AVRO_CONVERTER, {"schema.registry.url": registry.url})(frame)


class Unavailable(QuietHandler):
    """A gateway in front of a registry that is down: 503 for everything."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.answer(503, {"error_code": 50003, "message": "upstream registry unavailable"})


def test_a_registry_that_is_down_or_failing_is_the_callers_outage_error() -> None:
    frame = avro.frame_header(1) + b"\x02"
    nobody = f"http://127.0.0.1:{free_port()}"
    with loopback_http(Unavailable) as failing:
        for url, answer in ((nobody, "unreachable"), (failing, "HTTP 503")):
            decoder = sd.BatchDecoder(sd.make_codec(sd.registry_lookup(url), 1), 1)
            with pytest.raises(StreamError, match=answer):  # the task fails: no record is skipped
                decoder.decode([(b"k", frame, 0)], watermark_ms=0)
            with pytest.raises(RegistryUnavailableError, match=answer):  # the Connect task retries
                make_converter(AVRO_CONVERTER, {"schema.registry.url": url})(frame)
            with pytest.raises(StreamError, match=answer):
                jvm_source.plan_writer_schemas(url, 1)


def test_each_id_is_fetched_once_and_shared_across_threads(private_registry: RegistryServer) -> None:
    client = SchemaRegistryClient({"url": private_registry.url})
    v1 = client.register_schema("tx-value", Schema(contracts.transaction_schema_str(1), "AVRO"))
    v2 = client.register_schema("tx-value", Schema(contracts.transaction_schema_str(2), "AVRO"))
    schemas = RegistrySchemas(private_registry.url, unavailable=StreamError, transform=sd.plain_longs)
    results: list[tuple[int, Any]] = []
    errors: list[BaseException] = []

    def ask(schema_id: int) -> None:
        try:
            results.append((schema_id, schemas(schema_id)))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(v1 if i % 2 else v2,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(results) == 16
    assert all(schema == sd.plain_longs(contracts.transaction_schema(1 if sid == v1 else 2)) for sid, schema in results)
    private_registry.kill()  # the registry goes away: what was fetched stays, what was not is an outage
    assert schemas(v1) == sd.plain_longs(contracts.transaction_schema(1))
    assert json.loads(schemas.text(v2)) == contracts.transaction_schema(2)
    with pytest.raises(StreamError, match="unreachable"):
        schemas(v2 + 1)
