"""The Kafka Connect 3.5 REST API over a Worker, as a Flask app.

Errors are turned into `{"error_code": <http status>, "message": ...}` in one place
(`_error_response`), for our own ConnectErrors, for malformed requests and for
routing errors alike; nothing a client sends produces a 5xx.
"""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from fraudpipe.connect.plugins import all_plugins
from fraudpipe.connect.worker import VERSION, Worker, normalize_config
from fraudpipe.errors import ConnectError

log = logging.getLogger(__name__)
JSON = "application/json"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype=JSON, headers=headers)


def _error_response(status: int, message: str) -> Response:
    return _json({"error_code": status, "message": message}, status)


def _location(name: str) -> str:
    # headers are latin-1 on the wire: percent-encode whatever the name holds
    return f"/connectors/{quote(name, safe='')}"


def _flag(name: str) -> bool:
    """A query boolean, case-insensitive as Jersey's; anything but true/false is a 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ConnectError(f"query parameter {name} must be true or false, got {raw!r}", http_status=400)


def _body() -> Any:
    """The JSON request body; 415 for a non-JSON content type, 400 for a body that is not JSON."""
    mimetype = request.mimetype
    if mimetype and mimetype != JSON and not mimetype.endswith("+json"):
        raise ConnectError(f"Unsupported Media Type {mimetype}: send Content-Type: {JSON}", http_status=415)
    data = request.get_data(cache=True)
    if not data.strip():
        raise ConnectError("request body is empty: a JSON document is needed", http_status=400)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ConnectError(f"request body is not valid JSON: {exc}", http_status=400) from exc


def _with_warnings(worker: Worker, name: str) -> dict[str, Any]:
    """The connector's info, plus `warnings` (e.g. a topic that does not exist) when there are any."""
    info = worker.info(name)
    warnings = worker.warnings(name)
    return {**info, "warnings": warnings} if warnings else info


def create_app(worker: Worker) -> Flask:
    """The REST app serving `worker`."""
    app = Flask("fraudpipe.connect")

    @app.errorhandler(ConnectError)
    def connect_error(exc: ConnectError) -> Response:
        return _error_response(exc.http_status, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:  # a bug: log it, answer in the API's format
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/")
    def root() -> Response:
        return _json({"version": VERSION, "commit": "fraudpipe", "kafka_cluster_id": worker.settings.bootstrap_servers})

    @app.get("/connectors")
    def list_connectors() -> Response:
        expand = [value.lower() for value in request.args.getlist("expand")]
        names = worker.names()
        if not expand:
            return _json(names)
        body: dict[str, dict[str, Any]] = {}
        for name in names:
            entry: dict[str, Any] = {}
            try:
                if "status" in expand:
                    entry["status"] = worker.status(name)
                if "info" in expand:
                    entry["info"] = worker.info(name)
            except ConnectError:  # deleted meanwhile
                continue
            body[name] = entry
        return _json(body)

    @app.post("/connectors")
    def create() -> Response:
        body = _body()
        if not isinstance(body, dict):
            raise ConnectError("request body must be a JSON object {\"name\": ..., \"config\": {...}}", http_status=400)
        config = normalize_config(body.get("config", {}))
        name = body.get("name", config.get("name"))
        if not isinstance(name, str):
            raise ConnectError("Connector name is null or not a string", http_status=400)
        worker.put(name, config, create_only=True)
        return _json(_with_warnings(worker, name), 201, {"Location": _location(name)})

    @app.get("/connectors/<name>")
    def info(name: str) -> Response:
        return _json(worker.info(name))

    @app.get("/connectors/<name>/config")
    def get_config(name: str) -> Response:
        return _json(worker.config(name))

    @app.put("/connectors/<name>/config")
    def put_config(name: str) -> Response:
        created = worker.put(name, normalize_config(_body()), create_only=False)
        return _json(_with_warnings(worker, name), 201 if created else 200, {"Location": _location(name)} if created else None)

    @app.get("/connectors/<name>/status")
    def status(name: str) -> Response:
        return _json(worker.status(name))

    @app.get("/connectors/<name>/tasks")
    def tasks(name: str) -> Response:
        return _json(worker.tasks(name))

    @app.get("/connectors/<name>/tasks/<int:task_id>/status")
    def task_status(name: str, task_id: int) -> Response:
        return _json(worker.task_status(name, task_id))

    @app.post("/connectors/<name>/tasks/<int:task_id>/restart")
    def restart_task(name: str, task_id: int) -> Response:
        worker.restart_task(name, task_id)
        return Response(status=204)

    @app.get("/connectors/<name>/topics")
    def topics(name: str) -> Response:
        return _json(worker.topics(name))

    @app.put("/connectors/<name>/topics/reset")
    def reset_topics(name: str) -> Response:
        worker.reset_topics(name)
        return Response(status=204)

    @app.get("/connectors/<name>/offsets")
    def offsets(name: str) -> Response:
        return _json(worker.offsets(name))

    @app.put("/connectors/<name>/pause")
    def pause(name: str) -> Response:
        worker.pause(name)
        return Response(status=202)

    @app.put("/connectors/<name>/resume")
    def resume(name: str) -> Response:
        worker.resume(name)
        return Response(status=202)

    @app.put("/connectors/<name>/stop")
    def stop(name: str) -> Response:
        worker.stop_connector(name)
        return Response(status=202)

    @app.post("/connectors/<name>/restart")
    def restart(name: str) -> Response:
        include_tasks, only_failed = _flag("includeTasks"), _flag("onlyFailed")
        snapshot = worker.restart(name, include_tasks=include_tasks, only_failed=only_failed)
        return Response(status=204) if snapshot is None else _json(snapshot, 202)

    @app.delete("/connectors/<name>")
    def delete(name: str) -> Response:
        worker.delete(name)
        return Response(status=204)

    @app.get("/connector-plugins")
    def plugins() -> Response:
        return _json([{"class": p.class_name, "type": "sink", "version": p.version} for p in all_plugins().values()])

    @app.put("/connector-plugins/<plugin>/config/validate")
    def validate(plugin: str) -> Response:
        return _json(worker.validate(plugin, normalize_config(_body())))

    return app


