"""The HTML pages, one blueprint each; every page renders its handler's payload server-side.

The live parts of a page (marked data-live) and its charts are refreshed by
static/dashboard.js from the same URL and the page's JSON API.
"""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from dashboard import handlers
from dashboard.params import check_known, parse_sender

overview_bp = Blueprint("overview", __name__)
alerts_bp = Blueprint("alerts", __name__)
sender_bp = Blueprint("sender", __name__)
model_bp = Blueprint("model", __name__)
quality_bp = Blueprint("quality", __name__)
pipeline_bp = Blueprint("pipeline", __name__)

BLUEPRINTS = (overview_bp, alerts_bp, sender_bp, model_bp, quality_bp, pipeline_bp)


def _api_url(endpoint: str, **values: str) -> str:
    return url_for(endpoint, **values, **request.args)


@overview_bp.get("/")
def overview() -> str:
    payload = handlers.overview(request.args)
    return render_template("overview.html", page="overview", data=payload, api=_api_url("api.overview"))


@alerts_bp.get("/alerts")
def alerts() -> str:
    payload = handlers.alerts(request.args)
    newest = {k: v for k, v in request.args.items() if k != "cursor"}
    older = {**newest, "cursor": payload["next_cursor"]} if payload["next_cursor"] else None
    # only the first page refreshes live: an older page stays where the reader put it
    return render_template("alerts.html", page="alerts", data=payload, api=_api_url("api.alerts"),
                           live=not request.args.get("cursor"), newest_args=newest, older_args=older)


@alerts_bp.get("/alerts/<sender>/<window_start>")
def alert(sender: str, window_start: str) -> str:
    payload = handlers.alert(sender, window_start, request.args)
    return render_template("alert.html", page="alert", data=payload, live=False,
                           api=_api_url("api.alert", sender=sender, window_start=window_start))


@sender_bp.get("/senders")
def sender_search() -> Response:
    """The sender form posts here (GET ?sender=...), and is sent on to the sender's page."""
    check_known(request.args, ("sender",))
    account = parse_sender(request.args.get("sender"), required=True)
    return redirect(url_for("sender.sender", sender=account))


@sender_bp.get("/senders/<sender>")
def sender(sender: str) -> str:
    payload = handlers.sender(sender, request.args)
    return render_template("sender.html", page="sender", data=payload, api=_api_url("api.sender", sender=sender))


@model_bp.get("/model")
def model() -> str:
    payload = handlers.models(request.args)
    return render_template("model.html", page="model", data=payload, api=_api_url("api.models"))


@quality_bp.get("/quality")
def quality() -> str:
    payload = handlers.quality_view(request.args)
    return render_template("quality.html", page="quality", data=payload, api=_api_url("api.quality"))


@pipeline_bp.get("/pipeline")
def pipeline() -> str:
    payload = handlers.pipeline(request.args)
    return render_template("pipeline.html", page="pipeline", data=payload, api=_api_url("api.pipeline"))
