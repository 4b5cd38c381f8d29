"""Kafka Connect converters: bytes on the topic -> Python values for the sink.

Class names are the real ones, so connector JSON ports between this worker and Kafka
Connect. AvroConverter reads the Confluent frame and fetches the writer schema by id
from `schema.registry.url` (cached), so records written with an evolved schema keep
flowing: the sink picks the fields it maps and drops the rest.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Mapping

import requests

from fraudpipe.avro import AvroCodec
from fraudpipe.errors import ConnectError, SerializationError, UnknownSchemaIdError

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


class RegistrySchemas:
    """Writer schemas by id from GET {url}/schemas/ids/{id}; the codec caches what it finds."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.split(",")[0].strip().rstrip("/")
        self._session = requests.Session()
        self._timeout = timeout
        self._lock = threading.Lock()

    def __call__(self, schema_id: int) -> str:
        try:
            with self._lock:  # requests.Session is not safe for concurrent use
                response = self._session.get(f"{self.url}/schemas/ids/{schema_id}", timeout=self._timeout)
        except requests.RequestException as exc:
            raise RegistryUnavailableError(f"schema registry {self.url} unreachable fetching id {schema_id}: {exc}") from exc
        if response.status_code == 404:
            raise UnknownSchemaIdError(schema_id, f"not found in {self.url}")
        if response.status_code != 200:
            raise RegistryUnavailableError(
                f"schema registry {self.url} answered {response.status_code} for id {schema_id}: {response.text[:200]}"
            )
        try:
            return response.json()["schema"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryUnavailableError(f"schema registry {self.url}: bad body for id {schema_id}") from exc


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
        codec = AvroCodec(RegistrySchemas(url))

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
