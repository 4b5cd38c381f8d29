"""The registry's REST API (Confluent Schema Registry 7.5 paths, bodies and error codes) as a Flask app.

Requests are parsed here and handed to `service.Registry`; errors become Confluent-style
`{"error_code", "message"}` bodies in one place (`_register_error_handlers`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from fraudpipe.config import SchemaRegistryConfig
from fraudpipe.registry import codes
from fraudpipe.registry.records import Reference, StoredVersion
from fraudpipe.registry.service import Registry, SchemaRequest, parse_version
from fraudpipe.registry.storage import RegistryStorage

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_TYPES = ["AVRO"]
log = logging.getLogger(__name__)


class _Segment(BaseConverter):
    """One path segment, percent-decoded after routing, so subjects may contain '/' as %2F."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value, errors="replace")


class _RawPath:
    """WSGI middleware: route on the raw (still percent-encoded) path the server received.

    WSGI servers decode %2F in PATH_INFO into '/', which would split a subject name such as
    "a/b" into two segments; waitress keeps the raw target in REQUEST_URI.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raw = environ.get("REQUEST_URI")
        if raw:
            path = urlsplit(raw).path
            if path.startswith("/"):
                environ["PATH_INFO"] = path
        return self.app(environ, start_response)


def create_app(config: SchemaRegistryConfig | None = None, *, data_dir: str | Path | None = None) -> Flask:
    """The registry app over the SQLite state in `data_dir` (default: config.data_dir)."""
    config = config or SchemaRegistryConfig()
    storage = RegistryStorage(data_dir if data_dir is not None else config.data_dir)
    registry = Registry(storage)
    app = Flask(__name__)
    app.url_map.converters["seg"] = _Segment
    app.url_map.strict_slashes = False
    app.extensions["fraudpipe.registry"] = registry
    app.wsgi_app = _RawPath(app.wsgi_app)  # type: ignore[method-assign]
    _register_error_handlers(app)
    _register_routes(app, registry)
    return app


def reply(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype=CONTENT_TYPE)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(codes.RegistryError)
    def registry_error(exc: codes.RegistryError) -> Response:
        message = exc.args[0] if exc.args else "error"
        if exc.http_status >= 500:
            log.error("registry failure: %s", exc)
        return reply({"error_code": exc.error_code, "message": message}, exc.http_status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        return reply({"error_code": code, "message": f"HTTP {code} {exc.name}"}, code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected registry error on %s %s", request.method, request.path)
        return reply({"error_code": 50001, "message": f"Error in the backend: {type(exc).__name__}: {exc}"}, 500)


def _flag(name: str, *aliases: str) -> bool:
    """A boolean query parameter; any case of 'true' is true, as Confluent reads them."""
    return any(request.args.get(key, "").strip().lower() == "true" for key in (name, *aliases))


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise codes.bad_request(f"query parameter {name} must be an integer, got {raw!r}") from None


def _page(items: list[Any]) -> list[Any]:
    offset, limit = max(_int_arg("offset", 0), 0), _int_arg("limit", -1)
    return items[offset:] if limit < 0 else items[offset:offset + limit]


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise codes.bad_request(f"Malformed JSON request body: {exc}") from exc
    if not isinstance(body, dict):
        raise codes.unprocessable("The request body must be a JSON object")
    return body


def _schema_id(raw: str) -> int:
    try:
        schema_id = int(raw)
    except ValueError:
        raise codes.schema_not_found(f"Schema {raw} not found") from None
    if not 1 <= schema_id <= codes.MAX_VERSION:
        raise codes.schema_not_found(f"Schema {raw} not found")
    return schema_id


def _version_body(row: StoredVersion) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": row.subject, "version": row.version, "id": row.schema_id}
    return {**body, **_references(row.references), "schema": row.schema}


def _references(references: tuple[Reference, ...]) -> dict[str, Any]:
    """The `references` member, left out when there are none, as Confluent's NON_EMPTY JSON does."""
    return {"references": [reference.to_json() for reference in references]} if references else {}


def _register_routes(app: Flask, registry: Registry) -> None:  # noqa: C901 - one flat table of routes
    @app.get("/")
    def root() -> Response:
        return reply({})

    @app.get("/schemas/types")
    def schema_types() -> Response:
        return reply(SCHEMA_TYPES)

    @app.get("/schemas/ids/<seg:schema_id>")
    def schema_by_id(schema_id: str) -> Response:
        parsed = _schema_id(schema_id)
        return reply({"schema": registry.schema_by_id(parsed), **_references(registry.references_of_id(parsed))})

    @app.get("/schemas/ids/<seg:schema_id>/schema")
    def raw_schema_by_id(schema_id: str) -> Response:
        return Response(registry.schema_by_id(_schema_id(schema_id)), mimetype=CONTENT_TYPE)

    @app.get("/schemas/ids/<seg:schema_id>/subjects")
    def subjects_of_id(schema_id: str) -> Response:
        rows = registry.versions_of_id(_schema_id(schema_id), deleted=_flag("deleted"))
        wanted = request.args.get("subject")
        names = sorted({row.subject for row in rows if wanted is None or row.subject == wanted})
        return reply(_page(names))

    @app.get("/schemas/ids/<seg:schema_id>/versions")
    def versions_of_id(schema_id: str) -> Response:
        rows = registry.versions_of_id(_schema_id(schema_id), deleted=_flag("deleted"))
        wanted = request.args.get("subject")
        pairs = [{"subject": r.subject, "version": r.version} for r in rows if wanted is None or r.subject == wanted]
        return reply(_page(pairs))

    @app.get("/subjects")
    def subjects() -> Response:
        prefix = request.args.get("subjectPrefix", "")
        names = registry.subjects(prefix=prefix if prefix != ":*:" else "", deleted=_flag("deleted"),
                                  deleted_only=_flag("deletedOnly", "deleted_only"))
        return reply(_page(names))

    @app.post("/subjects/<seg:subject>")
    def lookup(subject: str) -> Response:
        found = registry.lookup(subject, SchemaRequest.from_body(_body()), deleted=_flag("deleted"))
        return reply(_version_body(found))

    @app.delete("/subjects/<seg:subject>")
    def delete_subject(subject: str) -> Response:
        return reply(registry.delete_subject(subject, permanent=_flag("permanent")))

    @app.get("/subjects/<seg:subject>/versions")
    def versions(subject: str) -> Response:
        found = registry.versions(subject, deleted=_flag("deleted"), deleted_only=_flag("deletedOnly", "deleted_only"))
        return reply(_page(found))

    @app.post("/subjects/<seg:subject>/versions")
    def register(subject: str) -> Response:
        return reply({"id": registry.register(subject, SchemaRequest.from_body(_body()))})

    @app.get("/subjects/<seg:subject>/versions/<seg:version>")
    def get_version(subject: str, version: str) -> Response:
        row = registry.get_version(subject, parse_version(version), deleted=_flag("deleted"))
        return reply(_version_body(row))

    @app.get("/subjects/<seg:subject>/versions/<seg:version>/schema")
    def get_version_schema(subject: str, version: str) -> Response:
        row = registry.get_version(subject, parse_version(version), deleted=_flag("deleted"))
        return Response(row.schema, mimetype=CONTENT_TYPE)

    @app.get("/subjects/<seg:subject>/versions/<seg:version>/referencedby")
    def referenced_by(subject: str, version: str) -> Response:
        return reply(_page(registry.referenced_by(subject, parse_version(version), deleted=_flag("deleted"))))

    @app.delete("/subjects/<seg:subject>/versions/<seg:version>")
    def delete_version(subject: str, version: str) -> Response:
        return reply(registry.delete_version(subject, parse_version(version), permanent=_flag("permanent")))

    @app.post("/compatibility/subjects/<seg:subject>/versions/<seg:version>")
    def compatibility_with_version(subject: str, version: str) -> Response:
        parsed = parse_version(version)
        return _compatibility_reply(registry.test_compatibility(subject, SchemaRequest.from_body(_body()), parsed))

    @app.post("/compatibility/subjects/<seg:subject>/versions")
    def compatibility_with_all(subject: str) -> Response:
        return _compatibility_reply(registry.test_compatibility(subject, SchemaRequest.from_body(_body()), None))

    @app.get("/config")
    def get_global_config() -> Response:
        return reply({"compatibilityLevel": registry.compatibility()})

    @app.put("/config")
    def put_global_config() -> Response:
        return reply({"compatibility": registry.set_compatibility(_level(_body()))})

    @app.delete("/config")
    def delete_global_config() -> Response:
        return reply({"compatibilityLevel": registry.delete_compatibility()})

    @app.get("/config/<seg:subject>")
    def get_subject_config(subject: str) -> Response:
        level = registry.subject_compatibility(subject, default_to_global=_flag("defaultToGlobal"))
        return reply({"compatibilityLevel": level})

    @app.put("/config/<seg:subject>")
    def put_subject_config(subject: str) -> Response:
        return reply({"compatibility": registry.set_compatibility(_level(_body()), subject)})

    @app.delete("/config/<seg:subject>")
    def delete_subject_config(subject: str) -> Response:
        return reply({"compatibilityLevel": registry.delete_compatibility(subject)})

    @app.get("/mode")
    def get_global_mode() -> Response:
        return reply({"mode": registry.mode()})

    @app.put("/mode")
    def put_global_mode() -> Response:
        return reply({"mode": registry.set_mode(_body().get("mode"), force=_flag("force"))})

    @app.get("/mode/<seg:subject>")
    def get_subject_mode(subject: str) -> Response:
        return reply({"mode": registry.subject_mode(subject, default_to_global=_flag("defaultToGlobal"))})

    @app.put("/mode/<seg:subject>")
    def put_subject_mode(subject: str) -> Response:
        return reply({"mode": registry.set_mode(_body().get("mode"), subject, force=_flag("force"))})

    @app.delete("/mode/<seg:subject>")
    def delete_subject_mode(subject: str) -> Response:
        return reply({"mode": registry.delete_mode(subject)})


def _level(body: dict[str, Any]) -> object:
    # Confluent's PUT /config takes "compatibility"; newer clients may send "compatibilityLevel".
    return body.get("compatibility", body.get("compatibilityLevel"))


def _compatibility_reply(reasons: list[str]) -> Response:
    body: dict[str, Any] = {"is_compatible": not reasons}
    if _flag("verbose"):
        body["messages"] = reasons
    return reply(body)
