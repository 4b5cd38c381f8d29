"""Writer schemas by id from a Confluent-compatible Schema Registry: the one client every decoder uses.

Built on confluent-kafka's SchemaRegistryClient (the producer's client; it caches schemas
by id and versions by subject/version). What this adds is the rule every caller shares:

- a 404 for the id means the record names a schema nobody registered: UnknownSchemaIdError,
  a SerializationError, so the record goes to the dead-letter topic;
- anything else (registry down, a timeout, a 5xx) is the caller's outage error (StreamError
  in the stream, RegistryUnavailableError in Connect): skipping records because the
  registry is away would lose data;
- schema references are resolved: the referenced subjects' versions are fetched (and what
  they reference, dependencies first) and the writer schema is returned self-contained,
  each named type defined where it is first used, as the Avro spec writes one schema;
- each id is fetched once per client, and one client can serve many threads.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterable

from fraudpipe.errors import FraudpipeError, SerializationError, UnknownSchemaIdError

MAX_REFERENCE_DEPTH = 64  # the registry refuses deeper chains too (fraudpipe/registry/references.py)
NOT_FOUND = 404

OutageError = Callable[[str], FraudpipeError]
Transform = Callable[[Any], Any]


class RegistrySchemas:
    """`lookup(schema_id)` for AvroCodec: the writer schema as a self-contained dict, cached per id.

    `unavailable` is the caller's error for an unreachable or failing registry; `transform`
    (e.g. the stream's plain_longs) is applied to what is returned, never to what is cached.
    """

    def __init__(self, url: str, *, unavailable: OutageError, timeout: float = 10.0, retries: int = 2,
                 transform: Transform | None = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.url = url
        self._unavailable = unavailable
        self._transform = transform
        # a few quick retries ride out a blip; an outage still surfaces within seconds
        self._client = SchemaRegistryClient({"url": url, "timeout": timeout, "max.retries": retries,
                                             "retries.wait.ms": 100, "retries.max.wait.ms": 1000})
        self._resolved: dict[int, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, schema_id: int) -> Any:
        schema = self.schema(schema_id)
        return self._transform(schema) if self._transform else schema

    def schema(self, schema_id: int) -> Any:
        """The writer schema of `schema_id`, references resolved (untransformed)."""
        with self._lock:  # one fetch per id, however many threads ask at once
            if schema_id not in self._resolved:
                registered = self._call(lambda: self._client.get_schema(schema_id), f"schema id {schema_id}",
                                        missing=lambda: UnknownSchemaIdError(schema_id, f"not found in {self.url}"))
                self._resolved[schema_id] = self._self_contained(registered, schema_id)
            return self._resolved[schema_id]

    def text(self, schema_id: int) -> str:
        """The writer schema of `schema_id` as self-contained JSON (what spark-avro's from_avro takes)."""
        return json.dumps(self.schema(schema_id))

    def subject_versions(self, subject: str) -> list[tuple[int, str]]:
        """(schema id, self-contained JSON) of each live version of `subject`; [] for an unknown subject."""
        found = []
        for version in self._call(lambda: self._client.get_versions(subject), f"versions of {subject}",
                                  missing=lambda: []):
            registered = self._call(lambda v=version: self._client.get_version(subject, v),
                                    f"{subject} version {version}", missing=lambda: None)
            if registered is None:  # deleted between the two calls
                continue
            with self._lock:
                if registered.schema_id not in self._resolved:
                    self._resolved[registered.schema_id] = self._self_contained(registered.schema, registered.schema_id)
            found.append((registered.schema_id, self.text(registered.schema_id)))
        return found

    def close(self) -> None:
        self._client.close()

    # --- inside ---------------------------------------------------------------------------
    def _call(self, request: Callable[[], Any], what: str, *, missing: Callable[[], Any]) -> Any:
        """Run one registry request: a 404 is `missing()` (returned, or raised when an exception),
        any other failure the caller's outage error."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return request()
        except SchemaRegistryError as exc:
            if exc.http_status_code == NOT_FOUND:
                answer = missing()
                if isinstance(answer, Exception):
                    raise answer from exc
                return answer
            raise self._unavailable(f"schema registry {self.url} answered HTTP {exc.http_status_code} "
                                    f"for {what}: {exc.error_message}") from exc
        except Exception as exc:  # httpx transport errors, timeouts, a body that is not JSON
            raise self._unavailable(f"schema registry {self.url} unreachable fetching {what}: "
                                    f"{type(exc).__name__}: {exc}") from exc

    def _self_contained(self, schema: Any, schema_id: int) -> Any:
        if schema.schema_type not in (None, "AVRO"):
            raise SerializationError(f"schema id {schema_id} is a {schema.schema_type} schema, not Avro")
        try:
            parsed = json.loads(schema.schema_str)
        except ValueError as exc:
            raise SerializationError(f"schema id {schema_id}: the registry sent no JSON schema: {exc}") from exc
        if not schema.references:
            return parsed
        named: dict[str, str] = {}
        self._collect(schema.references, named, schema_id, depth=0)
        return inline(schema.schema_str, named.values())

    def _collect(self, references: Iterable[Any], named: dict[str, str], schema_id: int, *, depth: int) -> None:
        """Texts of the referenced schemas into `named`, dependencies first, each name once (the first binding wins)."""
        if depth > MAX_REFERENCE_DEPTH:
            raise SerializationError(f"schema id {schema_id}: references nest deeper than {MAX_REFERENCE_DEPTH} levels")
        for reference in references:
            if reference.name in named:
                continue
            target = f"reference {reference.name} (subject {reference.subject} version {reference.version})"
            registered = self._call(lambda r=reference: self._client.get_version(r.subject, r.version),
                                    f"{target} of schema id {schema_id}",
                                    missing=lambda: UnknownSchemaIdError(schema_id, f"its {target} is not in {self.url}"))
            self._collect(registered.schema.references or (), named, schema_id, depth=depth + 1)
            named.setdefault(reference.name, registered.schema.schema_str)


def inline(text: str, named: Iterable[str]) -> Any:
    """One self-contained schema dict of `text` whose named types are defined by the schemas `named`.

    The Apache avro parser resolves the names as Java's does (the registry's own parse), and
    its JSON form defines each named type at its first use and names it after that.
    """
    from fraudpipe.registry.schemas import parse

    try:
        return json.loads(json.dumps(parse(text, tuple(named)).to_json()))
    except Exception as exc:  # avro's SchemaParseException and friends: the schema cannot be used
        raise SerializationError(f"a writer schema with references does not resolve: {type(exc).__name__}: {exc}") from exc

