import datetime as dt
import struct

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe import contracts
from fraudpipe.avro import AvroCodec, encode, frame_header, split_frame
from fraudpipe.errors import SerializationError, UnknownSchemaIdError

RECORD = {
    "transaction_id": "tx-1",
    "event_time": dt.datetime(2026, 11, 21, 12, 0, 1, 500000, tzinfo=dt.timezone.utc),
    "sender_account": "acct-1",
    "receiver_account": "acct-2",
    "amount_minor": 123456,
    "currency": "EUR",
    "transaction_type": "TRANSFER",
    "status": "DECLINED",
    "channel": "MOBILE",
}


def codec(reader=None):
    schemas = {7: contracts.transaction_schema_str(1), 8: contracts.transaction_schema_str(2)}
    return AvroCodec(schemas.__getitem__, reader_schema=reader)


def test_round_trip():
    frame = codec().encode(7, RECORD)
    assert frame[:5] == b"\x00\x00\x00\x00\x07"
    assert codec().decode(frame) == RECORD


def test_v2_frame_resolves_to_v1_reader_and_back():
    v2 = codec().encode(8, {**RECORD, "device_id": "dev-9"})
    assert codec(contracts.transaction_schema(1)).decode(v2) == RECORD
    v1 = codec().encode(7, RECORD)
    assert codec(contracts.transaction_schema(2)).decode(v1) == {**RECORD, "device_id": None}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x01\x00\x00\x00\x07abc", "bad magic byte 1"),
        (b"\x00\x00\x00", "short frame: 3 bytes"),
        (None, "empty frame"),
        (frame_header(7) + b"\xff", "corrupt Avro body for schema id 7"),
    ],
)
def test_bad_frames_say_why(frame, message):
    with pytest.raises(SerializationError, match=message):
        codec().decode(frame)


def test_unknown_schema_id():
    with pytest.raises(UnknownSchemaIdError, match="unknown schema id 99"):
        codec().decode(frame_header(99) + b"")


def test_split_frame_reads_big_endian_id():
    schema_id, body = split_frame(struct.pack(">bI", 0, 258) + b"xyz")
    assert schema_id == 258 and bytes(body) == b"xyz"


def test_encode_rejects_a_record_that_does_not_match():
    with pytest.raises(SerializationError, match="does not match schema id 7"):
        encode(7, contracts.transaction_schema_str(1), {**RECORD, "amount_minor": "12.50"})


@pytest.fixture()
def mock_registry():
    client = SchemaRegistryClient.new_client({"url": "mock://fraudpipe-test"})
    yield client


def test_confluent_serializer_bytes_decode_with_ours(mock_registry):
    serializer = AvroSerializer(mock_registry, contracts.transaction_schema_str(1))
    ctx = SerializationContext("transactions", MessageField.VALUE)
    frame = serializer(RECORD, ctx)
    schema_id, _ = split_frame(frame)
    ours = AvroCodec(lambda sid: mock_registry.get_schema(sid).schema_str)
    assert ours.decode(frame) == RECORD
    assert schema_id == mock_registry.get_latest_version("transactions-value").schema_id


def test_our_bytes_decode_with_confluent_deserializer(mock_registry):
    from confluent_kafka.schema_registry import Schema

    schema_id = mock_registry.register_schema("transactions-value", Schema(contracts.transaction_schema_str(1), "AVRO"))
    frame = encode(schema_id, contracts.transaction_schema_str(1), RECORD)
    deserializer = AvroDeserializer(mock_registry)
    assert deserializer(frame, SerializationContext("transactions", MessageField.VALUE)) == RECORD
