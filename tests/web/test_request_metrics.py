"""Request metrics: one count and one latency per request under its route template, a
request that raised counted once as the 500 it was answered with, and neither static
files nor scrapes counted."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.policy import policy


def _scraped(app: Flask) -> str:
    data = app.extensions["metrics"].generate_metrics()[0]
    return data.decode() if isinstance(data, bytes) else str(data)


def _value(app: Flask, name: str, **labels: str) -> float:
    registry = app.extensions["metrics"].registry
    return registry.get_sample_value(name, labels) or 0.0


def test_each_request_counts_once_under_its_route(app: Flask, client: FlaskClient) -> None:
    before = _value(app, "flask_http_request_total", method="GET", status="200")
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/static/css/app.css")
    client.get("/metrics")

    assert _value(app, "flask_http_request_total", method="GET", status="200") == before + 3
    route = {"method": "GET", "route": "/healthz", "status": "200"}
    assert _value(app, "flask_http_request_duration_seconds_count", **route) == 3
    assert _value(app, "flask_http_request_duration_seconds_sum", **route) > 0
    scraped = _scraped(app)
    assert "/static" not in scraped and 'route="/metrics"' not in scraped


def test_a_request_that_raises_counts_once_as_a_500(app: Flask) -> None:
    @app.get("/explodes")
    @policy("public")
    def explodes() -> str:
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # answered with the 500 page, as in production
    client = app.test_client()
    assert client.get("/explodes").status_code == 500

    route = {"method": "GET", "route": "/explodes", "status": "500"}
    assert _value(app, "flask_http_request_duration_seconds_count", **route) == 1
    assert _value(app, "flask_http_request_total", method="GET", status="500") == 1


@pytest.mark.parametrize("path", ["/no/such/page", "/items/999999999999"])
def test_unrouted_and_missing_count_without_their_path(
    app: Flask, client: FlaskClient, path: str
) -> None:
    client.get(path)
    scraped = _scraped(app)
    assert path not in scraped


def test_a_request_another_hook_answers_counts_too(app: Flask, client: FlaskClient) -> None:
    assert client.get("/items?q=" + "x" * 5000).status_code == 414
    assert _value(app, "flask_http_request_total", method="GET", status="414") == 1
