"""Errors reach users as a page, a fragment or problem JSON, never as a stack trace."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from app.errors import Forbidden, ValidationFailed
from app.policy import policy


def _add_failing_routes(app: Flask) -> None:
    @app.get("/__boom")
    @policy("public")
    def boom() -> str:
        raise RuntimeError("secret internals: password=hunter2")

    @app.get("/api/v1/__forbidden")
    @policy("public")
    def api_forbidden() -> str:
        raise Forbidden()

    @app.get("/api/v1/__invalid")
    @policy("public")
    def api_invalid() -> str:
        raise ValidationFailed(fields={"name": "Required."})


def test_404_is_a_friendly_page(client: FlaskClient) -> None:
    response = client.get("/missing")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "<html" in html and "We could not find that page" in html


def test_404_for_htmx_is_a_fragment(client: FlaskClient) -> None:
    response = client.get(
        "/missing",
        headers={"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#main"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "<html" not in html and "flash-error" in html
    assert "HX-Request" in response.headers["Vary"]


def test_404_under_api_is_problem_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404 and response.json["title"] == "Not Found"  # type: ignore[index]


def test_500_hides_internals(app: Flask) -> None:
    _add_failing_routes(app)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/__boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "hunter2" not in html and "Traceback" not in html
    assert "Something went wrong on our side" in html


def test_app_errors_under_api_carry_field_details(app: Flask) -> None:
    _add_failing_routes(app)
    client = app.test_client()
    assert client.get("/api/v1/__forbidden").json["status"] == 403  # type: ignore[index]
    invalid = client.get("/api/v1/__invalid")
    assert invalid.status_code == 422
    assert invalid.json["errors"] == {"name": "Required."}  # type: ignore[index]


def test_405_is_friendly(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "That action is not allowed here" in response.get_data(as_text=True)
