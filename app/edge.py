"""The edge: which kind of request this is, and how an error is answered.

Services raise the plain exceptions of app/errors.py; here they become an HTML
page, an HTMX fragment or RFC 9457 problem JSON, whichever the request expects.
Pages and the API register the same handlers, so a rule for errors lives once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    flash,
    jsonify,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError
from psycopg.errors import QueryCanceled
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from app.core.breaker import ServiceDown
from app.core.metrics import UNAVAILABLE
from app.errors import AppError
from app.htmx import htmx, redirect_303

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


def is_api_request() -> bool:
    """API paths speak JSON with bearer tokens; every other path is a page."""
    return request.path.startswith(API_PREFIX)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An RFC 9457 problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.path,
    }
    if fields:
        body["errors"] = dict(fields)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update(dict(headers or {}))
    return response


def sign_in_redirect() -> Response:
    """Send a visitor without a session to the sign-in page, remembering where they were.

    htmx requests get HX-Redirect (a fetch would swallow a 303) naming the page
    the user was looking at, so after signing in they land back on it.
    """
    if getattr(session, "expired", False):  # a session Redis no longer knows: say so
        flash("Your session has expired. Please sign in again.", "info")
    details = htmx()
    if details.request:
        current = urlsplit(details.current_url or "")
        back = (current.path or "/") + (f"?{current.query}" if current.query else "")
        response = Response("", status=401)
        response.headers["HX-Redirect"] = url_for("auth.login", next=back)
        return response
    back = request.full_path if request.query_string else request.path
    return redirect_303(url_for("auth.login", next=back))


def render_error(
    status: int,
    title: str,
    message: str,
    *,
    code: str,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render one error the way this request expects it."""
    if is_api_request():
        if status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return problem(status, title, message, code=code, fields=fields, headers=headers)
    if status == 401:
        return sign_in_redirect()
    response = Response(_error_html(status, title, message), status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    response.headers.update(dict(headers or {}))
    return response


def _error_html(status: int, title: str, message: str) -> str:
    """The error as a fragment, as a page with the navigation, or, for failures on our side,
    as a page that needs nothing that can fail (no session, no current user, no database)."""
    context = {"status": status, "title": title, "message": message}
    if htmx().wants_fragment:
        return _render_plain("errors/_fragment.html", context)
    if status < 500:
        try:
            return render_template("errors/error.html", **context)
        except Exception:  # noqa: BLE001 - the full page needs the session; show the plain one
            log.warning("error page needed a service that failed; showing the plain one")
    retry = request.full_path if request.method == "GET" else "/"
    return _render_plain("errors/standalone.html", {**context, "retry_url": retry})


def _render_plain(template: str, context: dict[str, Any]) -> str:
    """Render without Flask's context processors: those load the session and the signed-in
    user, which is exactly what may be failing."""
    return current_app.jinja_env.get_template(template).render(context)


def unavailable(service: str, retry_after: int) -> Response:
    """503 with Retry-After when a backing service is down: say which, never a bare 500."""
    UNAVAILABLE.labels(service=service).inc()
    message = UNAVAILABLE_MESSAGES.get(service, UNAVAILABLE_MESSAGES["default"])
    return render_error(
        503,
        "Service temporarily unavailable",
        message,
        code="unavailable",
        headers={"Retry-After": str(retry_after)},
    )


UNAVAILABLE_MESSAGES = {
    "sessions": "We can't check your sign-in right now. Please try again in a few seconds.",
    "redis": "We can't check your sign-in right now. Please try again in a few seconds.",
    "database": "The database isn't answering right now. Please try again in a few seconds.",
    "default": "A service we depend on isn't answering. Please try again in a few seconds.",
}

_FRIENDLY = {
    400: "The request could not be understood.",
    401: "Please sign in to continue.",
    403: "You do not have permission to see this page.",
    404: "We could not find that page. It may have moved or never existed.",
    405: "That action is not allowed here.",
    413: "That upload is too large.",
    414: "That address is too long. Shorten the search and try again.",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
}
CSRF_MESSAGE = "Your form expired or was sent without its security token. Reload and try again."


def register_error_handlers(app: Flask) -> None:
    """Translate AppError, HTTP errors and unexpected exceptions at the edge."""

    @app.errorhandler(AppError)
    def _app_error(exc: AppError) -> Response:
        return render_error(
            exc.status,
            exc.title,
            exc.message,
            code=exc.code,
            fields=exc.fields,
            headers=exc.headers,
        )

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Response:
        return render_error(400, exc.name, CSRF_MESSAGE, code="bad_request")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {k: v for k, v in exc.get_headers() if k.lower() in {"retry-after", "allow"}}
        message = _FRIENDLY.get(status) or exc.description or exc.name
        return render_error(
            status, exc.name, message, code=exc.name.lower().replace(" ", "_"), headers=headers
        )

    @app.errorhandler(ServiceDown)
    def _service_down(exc: ServiceDown) -> Response:
        log.warning("%s on %s %s", exc, request.method, request.path)
        return unavailable(exc.service, exc.retry_after)

    @app.errorhandler(PendingRollbackError)  # the connection died earlier in this request
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(InterfaceError)
    def _database_gone(exc: Exception) -> Response:
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
        return unavailable("database", 5)

    @app.errorhandler(OperationalError)
    def _database_error(exc: OperationalError) -> Response:
        if not isinstance(exc.orig, QueryCanceled):  # connection refused, reset, server gone
            return _database_gone(exc)
        log.warning("statement timeout on %s %s", request.method, request.path)
        return render_error(  # the read pool's statement timeout
            503,
            "That took too long",
            "The database gave up on this view. Narrow the search, or use the pager's "
            "links instead of a page number typed into the address.",
            code="query_timeout",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500, "Internal server error", _FRIENDLY[500], code="internal_error")
