"""Request id, security headers, timing and the access log line."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient

from app.core.logging import JsonFormatter


def test_request_id_is_generated_and_echoed(client: FlaskClient) -> None:
    response = client.get("/healthz")
    rid = response.headers["X-Request-ID"]
    assert len(rid) == 32 and rid.isalnum()
    assert client.get("/healthz").headers["X-Request-ID"] != rid


def test_sane_incoming_request_id_is_kept(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "edge-1234abcd"})
    assert response.headers["X-Request-ID"] == "edge-1234abcd"


@pytest.mark.parametrize(
    "bad", ["short", "a" * 300, "id with spaces", "x\r\nSet-Cookie: a=b", "<script>"]
)
def test_unsafe_incoming_request_id_is_replaced(client: FlaskClient, bad: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": bad.replace("\r\n", "")})
    assert response.headers["X-Request-ID"] != bad
    assert len(response.headers["X-Request-ID"]) == 32


def test_security_headers_on_pages_and_errors(client: FlaskClient) -> None:
    for path in ("/", "/does-not-exist"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert headers["Server-Timing"].startswith("app;dur=")


def test_one_structured_access_line_per_request(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        client.get("/healthz", headers={"X-Request-ID": "trace-abcdef12"})
    lines = [r for r in caplog.records if r.name == "app.access"]
    assert len(lines) == 1
    record = lines[0]
    assert (record.method, record.path, record.status) == ("GET", "/healthz", 200)  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
    formatted = json.loads(JsonFormatter().format(record))
    assert formatted["status"] == 200 and formatted["endpoint"] == "ops.healthz"
    assert formatted["request_id"] == "trace-abcdef12"
