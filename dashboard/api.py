"""The JSON API behind every page (documented in docs/dashboard.md)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from dashboard import handlers

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/overview")
def overview() -> Response:
    return jsonify(handlers.overview(request.args))


@bp.get("/alerts")
def alerts() -> Response:
    return jsonify(handlers.alerts(request.args))


@bp.get("/alerts/<sender>/<window_start>")
def alert(sender: str, window_start: str) -> Response:
    return jsonify(handlers.alert(sender, window_start, request.args))


@bp.get("/senders/<sender>")
def sender(sender: str) -> Response:
    return jsonify(handlers.sender(sender, request.args))


@bp.get("/models")
def models() -> Response:
    return jsonify(handlers.models(request.args))


@bp.get("/quality")
def quality() -> Response:
    return jsonify(handlers.quality_view(request.args))


@bp.get("/pipeline")
def pipeline() -> Response:
    return jsonify(handlers.pipeline(request.args))
