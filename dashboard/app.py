"""The Flask app factory: config, the store, blueprints, filters and the one error mapping."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from fraudpipe.config import Config, load_config
from fraudpipe.errors import DashboardError, StoreError
from dashboard import api, context, pages

log = logging.getLogger(__name__)


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the plotly package: served locally, never from a CDN."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():  # pragma: no cover - a broken plotly install
        raise DashboardError(f"plotly.min.js not found at {path}; reinstall the plotly package", http_status=500)
    return path


def create_app(config: Config | None = None) -> Flask:
    """Build the dashboard app; tests pass their own Config (flaskr-style factory)."""
    config = config or load_config()
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep payloads in the order built
    context.install(app, config)
    app.register_blueprint(api.bp)
    for blueprint in pages.BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.get("/vendor/plotly.min.js")
    def plotly_js() -> Response:
        return send_file(plotly_js_path(), mimetype="text/javascript", max_age=86400)

    app.context_processor(context.page_defaults)
    app.add_template_filter(format_time, "time")
    app.add_template_filter(format_share, "share")
    app.add_template_filter(format_minor, "money")
    app.add_template_filter(format_number, "num")
    app.add_template_filter(format_figure, "figure")
    _register_errors(app)
    return app


def _register_errors(app: Flask) -> None:
    """Domain errors become {"error_code", "message"} on the API and an error page elsewhere."""

    def respond(status: int, message: str) -> Any:
        if request.path.startswith("/api/"):
            return jsonify({"error_code": status, "message": message}), status
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(DashboardError)
    def dashboard_error(exc: DashboardError) -> Any:
        return respond(exc.http_status, str(exc))

    @app.errorhandler(StoreError)
    def store_error(exc: StoreError) -> Any:
        log.warning("store read failed: %s", exc)
        return respond(503, f"the store could not answer: {exc}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return respond(exc.code or 500, exc.description or exc.name)


# --- template filters ------------------------------------------------------------
def format_time(epoch_ms: Any) -> str:
    if epoch_ms is None:
        return "—"
    return dt.datetime.fromtimestamp(int(epoch_ms) / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_share(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.2f} %"


def format_minor(value: Any, currency: str | None = None) -> str:
    """Minor units (cents) as a major amount, with the currency code when given: 1,234.56 USD."""
    if value is None:
        return "—"
    return f"{int(value) / 100:,.2f}" + (f" {currency}" if currency else "")


def format_number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{float(value):,.{digits}f}"


def format_figure(value: Any) -> str:
    """One figure of a report: counts with separators, ratios to 3 decimals, yes/no, text as is."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
