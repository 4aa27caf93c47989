"""HTTP middleware: request id, timing, one access-log line, security headers, and a
limit on the query string."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestURITooLarge

from app.core.logging import request_id_var

access_log = logging.getLogger("app.access")

MAX_QUERY_BYTES = 4096
"""Longer query strings answer 414 here, whatever serves the app (gunicorn.conf.py lets
request lines up to 8190 bytes through, so this answer, not the server's, is the one seen)."""

# Accept an upstream id only if it is short and harmless in logs and headers.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

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


def incoming_request_id() -> str:
    """Reuse a sane X-Request-ID from the proxy, or make a new one."""
    candidate = request.headers.get("X-Request-ID", "")
    return candidate if _SAFE_REQUEST_ID.match(candidate) else uuid.uuid4().hex


def _log_access(response: Response, elapsed_ms: float) -> None:
    """One structured line per request: what, how it ended, how long, for whom."""
    path = _loggable_path()
    access_log.info(
        "%s %s %s %.1fms",
        request.method,
        path,
        response.status_code,
        elapsed_ms,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": round(elapsed_ms, 2),
            "bytes": response.calculate_content_length(),
            "remote_addr": request.remote_addr,
            "endpoint": request.endpoint,
            "request_id": g.get("request_id"),
        },
    )


def _loggable_path() -> str:
    """The request path, with secrets in the URL (reset tokens) replaced by the route pattern."""
    if request.view_args and "token" in request.view_args and request.url_rule is not None:
        return request.url_rule.rule
    return request.path


def register_middleware(app: Flask, *, hsts: bool = False) -> None:
    """Install the before/after hooks on the app."""
    headers = dict(SECURITY_HEADERS)
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    defaults = [(name.lower(), name, value) for name, value in headers.items()]

    @app.before_request
    def _start() -> None:
        g.request_id = incoming_request_id()
        g.request_started = time.perf_counter()
        g.request_id_token = request_id_var.set(g.request_id)
        if len(request.environ.get("QUERY_STRING", "")) > MAX_QUERY_BYTES:
            raise RequestURITooLarge(f"Keep the query string under {MAX_QUERY_BYTES:,} bytes.")

    @app.after_request
    def _finish(response: Response) -> Response:
        elapsed_ms = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        # One pass over the headers instead of a scan per setdefault (this runs on every response).
        present = {name.lower() for name, _ in response.headers.items()}
        response.headers.extend(
            [(name, value) for lower, name, value in defaults if lower not in present]
            + [
                ("X-Request-ID", g.get("request_id", "")),
                ("Server-Timing", f"app;dur={elapsed_ms:.1f}"),
            ]
        )
        if access_log.isEnabledFor(logging.INFO):  # skip building the record when not logged
            _log_access(response, elapsed_ms)
        return response

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)
