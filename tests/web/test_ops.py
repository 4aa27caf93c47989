"""/healthz, /readyz and /metrics as an operator sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import free_port, make_settings, require


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_embedded_mode_reports_disabled_services(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    checks = response.json["checks"]  # type: ignore[index]
    assert checks["database"]["state"] == "up"
    assert checks["redis"] == {"state": "disabled"}
    assert checks["rabbitmq"] == {"state": "disabled"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_503_when_a_configured_service_is_down(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    dead = free_port()  # nothing listens here
    app = create_app(
        make_settings(
            tmp_path,
            database_url=sqlite_url,
            redis_url=f"redis://127.0.0.1:{dead}/0",
            rabbitmq_url=f"amqp://guest:guest@127.0.0.1:{dead}/",
        )
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable"  # type: ignore[index]
    assert body["checks"]["database"]["state"] == "up"  # type: ignore[index]
    assert body["checks"]["redis"]["state"] == "down"  # type: ignore[index]
    assert body["checks"]["rabbitmq"]["state"] == "down"  # type: ignore[index]
    # /metrics runs the same checks, so an alert on app_service_up sees what /readyz sees
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'app_service_up{service="database"} 1.0' in metrics
    assert 'app_service_up{service="redis"} 0.0' in metrics
    assert 'app_service_up{service="rabbitmq"} 0.0' in metrics


def test_services_not_configured_are_left_out_of_app_service_up(client: FlaskClient) -> None:
    metrics = client.get("/metrics").get_data(as_text=True)
    up = [line for line in metrics.splitlines() if line.startswith("app_service_up{")]
    assert up == ['app_service_up{service="database"} 1.0']


@pytest.mark.redis
@pytest.mark.rabbitmq
def test_readyz_with_the_real_services_up(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    app = create_app(
        make_settings(
            tmp_path,
            database_url=sqlite_url,
            redis_url=require("REDIS_URL"),
            rabbitmq_url=require("RABBITMQ_URL"),
        )
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.json
    assert {c["state"] for c in response.json["checks"].values()} == {"up"}  # type: ignore[index]


@pytest.mark.postgres
def test_readyz_on_postgres(pg_app: Flask) -> None:
    response = pg_app.test_client().get("/readyz")
    assert response.json["checks"]["database"]["state"] == "up"  # type: ignore[index]


def test_metrics_expose_request_counts_and_latency_by_route(client: FlaskClient) -> None:
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no-such-page")
    text = client.get("/metrics").get_data(as_text=True)
    bucket = 'flask_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"'
    assert bucket in text
    assert 'route="unmatched",status="404"' in text and "no-such-page" not in text
    assert 'flask_http_request_total{method="GET",status="200"}' in text
    assert "app_events_published_total" in text or "# HELP app_events_published_total" in text


def test_two_apps_in_one_process_each_have_metrics(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    first = create_app(make_settings(tmp_path, database_url=sqlite_url))
    second = create_app(make_settings(tmp_path / "b", database_url=sqlite_url))
    for app in (first, second):
        assert app.test_client().get("/metrics").status_code == 200


def test_metrics_token_guards_the_endpoint_when_set(sqlite_url: str, tmp_path: Path) -> None:
    from app import create_app

    app = create_app(make_settings(tmp_path, database_url=sqlite_url, metrics_token="s3cret"))
    client = app.test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert scraped.status_code == 200 and "flask_http_request" in scraped.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # nothing else wants the token
