"""Kafka Connect converters: bytes on the topic -> Python values for the sink.

Class names are the real ones, so connector JSON ports between this worker and Kafka
Connect. AvroConverter reads the Confluent frame and fetches the writer schema by id
from `schema.registry.url` (fraudpipe/registry_client.py: cached, references resolved),
so records written with an evolved schema keep flowing: the sink picks the fields it
maps and drops the rest.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from fraudpipe.avro import AvroCodec
from fraudpipe.errors import ConnectError, SerializationError
from fraudpipe.registry_client import RegistrySchemas

STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"
AVRO_CONVERTER = "io.confluent.connect.avro.AvroConverter"
BYTES_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
REGISTRY_URL_KEY = "schema.registry.url"


class RegistryUnavailableError(ConnectError):
    """The Schema Registry could not be reached; the task retries instead of dead-lettering."""

    retriable = True


Converter = Callable[[Any], Any]


def _string(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError(f"StringConverter: not UTF-8: {exc}") from exc


def _bytes(data: bytes | None) -> bytes | None:
    return data


def _json(schemas_enable: bool) -> Converter:
    def convert(data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SerializationError(f"JsonConverter: not JSON: {exc}") from exc
        if schemas_enable:
            if not isinstance(value, dict) or set(value) != {"schema", "payload"}:
                raise SerializationError("JsonConverter with schemas.enable=true needs an envelope {schema, payload}")
            return value["payload"]
        return value

    return convert


def make_converter(class_name: str, settings: Mapping[str, str]) -> Converter:
    """A converter function for a converter class and its `<prefix>.*` settings (prefix stripped)."""
    if class_name == STRING_CONVERTER:
        return _string
    if class_name == BYTES_CONVERTER:
        return _bytes
    if class_name == JSON_CONVERTER:
        return _json(str(settings.get("schemas.enable", "true")).strip().lower() == "true")
    if class_name == AVRO_CONVERTER:
        url = settings.get(REGISTRY_URL_KEY)
        if not url:
            raise ConnectError(f"{AVRO_CONVERTER} needs {REGISTRY_URL_KEY}", http_status=400)
        codec = AvroCodec(RegistrySchemas(url, unavailable=RegistryUnavailableError))

        def avro(data: bytes | None) -> Any:
            # a null value is a tombstone in Connect, not a decoding error
            return None if data is None else codec.decode(data)

        return avro
    raise ConnectError(f"unknown converter class {class_name}", http_status=400)


CONVERTER_CLASSES = (STRING_CONVERTER, AVRO_CONVERTER, BYTES_CONVERTER, JSON_CONVERTER)


def converter_problem(class_name: str, settings: Mapping[str, str]) -> str | None:
    """Why a converter config cannot work, or None."""
    if class_name not in CONVERTER_CLASSES:
        return f"Class {class_name} could not be found; known converters: {', '.join(CONVERTER_CLASSES)}"
    if class_name == AVRO_CONVERTER and not settings.get(REGISTRY_URL_KEY):
        return f"{AVRO_CONVERTER} needs {REGISTRY_URL_KEY}"
    return None
