"""Every route declares an access policy, and guests can write nowhere."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from app.policy import POLICIES, declared_policy

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def test_every_registered_route_declares_a_policy(app: Flask) -> None:
    missing = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if declared_policy(app.view_functions[rule.endpoint]) not in POLICIES
    ]
    assert missing == []


def test_an_undeclared_route_is_refused(app: Flask) -> None:
    @app.get("/__undeclared")
    def undeclared() -> str:
        return "should never be served"

    response = app.test_client().get("/__undeclared")
    assert response.status_code == 403 and "should never be served" not in response.get_data(
        as_text=True
    )


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "1", rule)


def test_guest_gets_403_on_every_write_route(app: Flask, as_guest: FlaskClient) -> None:
    tried = []
    for rule in app.url_map.iter_rules():
        name = declared_policy(app.view_functions[rule.endpoint])
        if name in ("public", "session") or rule.rule.startswith("/api/"):
            continue
        for method in (rule.methods or set()) & WRITE_METHODS:
            response = as_guest.open(_concrete(rule.rule), method=method, data={})
            tried.append((rule.rule, method))
            assert response.status_code == 403, (rule.rule, method, response.status_code)
    assert len(tried) >= 4


def test_anonymous_gets_no_private_page(app: Flask, client: FlaskClient) -> None:
    for rule in app.url_map.iter_rules():
        name = declared_policy(app.view_functions[rule.endpoint])
        if name == "public" or "GET" not in (rule.methods or set()):
            continue
        response = client.get(_concrete(rule.rule))
        assert response.status_code in (303, 401), (rule.rule, response.status_code)
