"""HTTP middleware: request id, timing, security headers and one access-log line, and
a limit on the query string.

It wraps the WSGI app rather than hooking into Flask's request cycle, so every
response gets them: those of error handlers, and those produced when a backing
service failed before a view ran (a Redis outage while loading the session).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import RequestURITooLarge

from app.core.logging import request_id_var

access_log = logging.getLogger("app.access")

MAX_QUERY_BYTES = 4096
"""Longer query strings answer 414 here, whatever serves the app (gunicorn.conf.py lets
request lines up to 8190 bytes through, so this answer, not the server's, is the one seen)."""

# Accept an upstream id only if it is short and harmless in logs and headers.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
ENDPOINT_KEY, PATH_KEY = "app.endpoint", "app.log_path"  # what views leave for the log

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def incoming_request_id(environ: dict[str, Any]) -> str:
    """Reuse a sane X-Request-ID from the proxy, or make a new one."""
    candidate = environ.get("HTTP_X_REQUEST_ID", "")
    return candidate if _SAFE_REQUEST_ID.match(candidate) else uuid.uuid4().hex


class RequestEdge:
    """WSGI middleware around the whole app (see the module docstring)."""

    def __init__(self, app: WsgiApp, headers: dict[str, str]) -> None:
        self.app = app
        self.defaults = [(name.lower(), name, value) for name, value in headers.items()]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = incoming_request_id(environ)
        token = request_id_var.set(rid)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            elapsed_ms = (time.perf_counter() - started) * 1000
            present = {name.lower() for name, _ in headers}
            headers.extend(
                [(name, value) for lower, name, value in self.defaults if lower not in present]
                + [("X-Request-ID", rid), ("Server-Timing", f"app;dur={elapsed_ms:.1f}")]
            )
            if access_log.isEnabledFor(logging.INFO):  # skip building the record when not logged
                _log_access(environ, status, headers, elapsed_ms, rid)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            request_id_var.reset(token)


def _log_access(
    environ: dict[str, Any], status: str, headers: list[tuple[str, str]], ms: float, rid: str
) -> None:
    """One structured line per response: what, how it ended, how long, for whom."""
    path = environ.get(PATH_KEY) or environ.get("PATH_INFO", "")
    code = int(status.split(" ", 1)[0])
    size = next((v for k, v in headers if k.lower() == "content-length"), None)
    access_log.info(
        "%s %s %s %.1fms",
        environ.get("REQUEST_METHOD"),
        path,
        code,
        ms,
        extra={
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "status": code,
            "duration_ms": round(ms, 2),
            "bytes": int(size) if size and size.isdigit() else None,
            "remote_addr": environ.get("REMOTE_ADDR"),
            "endpoint": environ.get(ENDPOINT_KEY),
            "request_id": rid,
        },
    )


def _note_route() -> None:
    """Leave the endpoint and a loggable path for the access line (reset tokens are
    credentials: their paths are logged as the route pattern)."""
    environ = request.environ
    environ[ENDPOINT_KEY] = request.endpoint
    if request.view_args and "token" in request.view_args and request.url_rule is not None:
        environ[PATH_KEY] = request.url_rule.rule


def _refuse_long_queries() -> None:
    """414 for a query string past MAX_QUERY_BYTES, before anything reads it."""
    if len(request.environ.get("QUERY_STRING", "")) > MAX_QUERY_BYTES:
        raise RequestURITooLarge(f"Keep the query string under {MAX_QUERY_BYTES:,} bytes.")


def register_middleware(app: Flask, *, hsts: bool = False) -> None:
    """Wrap the app; note each request's route for its log line; refuse oversized queries."""
    headers = dict(SECURITY_HEADERS)
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    app.wsgi_app = RequestEdge(app.wsgi_app, headers)  # type: ignore[method-assign]
    app.before_request(_note_route)
    app.before_request(_refuse_long_queries)
