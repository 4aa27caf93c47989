"""Metric hygiene: HTTP series are labelled by route template, so no number of ids, paths
or visitors grows the scrape, and no label value carries an email address or a secret."""

from __future__ import annotations

import re
from collections import defaultdict

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.core.prometheus import UNMATCHED_ROUTE
from tests.conftest import login
from tests.factories import PASSWORD, seed_items

Series = dict[str, set[tuple[tuple[str, str], ...]]]


def _scrape(client: FlaskClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _series(client: FlaskClient) -> Series:
    """Every series on /metrics by family: its labels (histogram buckets folded in)."""
    out: Series = defaultdict(set)
    for family in text_string_to_metric_families(_scrape(client)):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            out[family.name].add(labels)
    return out


def _label_values(text: str) -> dict[str, set[str]]:
    """Every label's values on a scrape."""
    out: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for key, value in sample.labels.items():
                out[key].add(value)
    return out


def _bearer(client: FlaskClient, email: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.json
    return {"Authorization": f"Bearer {answer.json['access_token']}"}  # type: ignore[index]


def test_http_series_are_labelled_by_route_template_never_by_path(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    [item_id] = seed_items(app, accounts["user"], [("Lamp", "2.00", "active")])
    for path in (f"/items/{item_id}", f"/items/{item_id}/edit", "/items/987654", "/nowhere/42"):
        as_user.get(path)
    as_user.get(f"/api/v1/items/{item_id}", headers=_bearer(as_user, "user@example.com"))
    routes = _label_values(_scrape(as_user))["route"]
    templates = {rule.rule for rule in app.url_map.iter_rules()}
    assert routes <= templates | {UNMATCHED_ROUTE}, routes - templates
    assert {"/items/<int:item_id>", "/items/<int:item_id>/edit"} <= routes
    assert "/api/v1/items/<int:item_id>" in routes and UNMATCHED_ROUTE in routes
    assert not {r for r in routes if re.search(r"/\d+(/|$)", r) or "nowhere" in r}


def test_three_hundred_item_ids_add_no_series(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    [item_id] = seed_items(app, accounts["user"], [("Lamp", "2.00", "active")])
    token = _bearer(as_user, "user@example.com")

    def visit(n: int) -> None:
        assert as_user.get(f"/items/{n}").status_code == (200 if n == item_id else 404)
        answer = as_user.get(f"/api/v1/items/{n}", headers=token)
        assert answer.status_code == (200 if n == item_id else 404)
        if n % 10 == 0:  # and a sample of paths no route matches
            assert as_user.get(f"/no-such-page/{n}").status_code == 404

    missing = (item_id + 10_000) // 10 * 10
    visit(item_id)  # each kind of answer once: a found item, a missing one, an unknown path
    visit(missing)
    before = _series(as_user)
    for n in range(missing + 1, missing + 301):
        visit(n)
    visit(item_id)
    after = _series(as_user)
    grown = {name: after[name] - before.get(name, set()) for name in after}
    assert not {name: new for name, new in grown.items() if new}
    counted = sum(
        1 for s in after["flask_http_request_duration_seconds"] if ("route", UNMATCHED_ROUTE) in s
    )
    assert counted >= 1, "the unknown paths were not counted at all"


def test_no_label_carries_an_email_or_a_secret(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    secrets = {PASSWORD, "wrong-password-123", "s3cret-guess"}
    emails = {"user@example.com", "admin@example.com", "mallory.probe@attacker.example"}
    # bad sign-ins, by page and API, for real and invented addresses
    assert login(client, "mallory.probe@attacker.example", "s3cret-guess").status_code == 422
    assert login(client, "user@example.com", "wrong-password-123").status_code == 422
    for email in ("admin@example.com", "mallory.probe@attacker.example"):
        refused = client.post("/api/v1/auth/login", json={"email": email, "password": "x" * 9})
        assert refused.status_code == 401
    # a reset and a sign-up for addresses of their own
    emails |= {"forgetful.person@example.net", "newcomer.person@example.org"}
    assert client.post("/forgot", data={"email": "forgetful.person@example.net"}).status_code in (
        200,
        303,
    )
    form = {"email": "newcomer.person@example.org", "name": "New", "password": PASSWORD}
    assert client.post("/register", data={**form, "confirm_password": PASSWORD}).status_code == 303
    client.post("/logout")
    # a session and an API token, used, and a forged token and a token in a query string
    assert login(client, "user@example.com").status_code == 303
    assert client.get("/items?token=abc.def.ghi&email=user%40example.com").status_code == 200
    session_cookie = client.get_cookie("session")
    assert session_cookie is not None
    secrets.add(session_cookie.value)
    headers = _bearer(client, "admin@example.com")
    secrets.add(headers["Authorization"].removeprefix("Bearer "))
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.forgedsignature"}
    assert client.get("/api/v1/me", headers=forged).status_code == 401
    secrets.add("forgedsignature")

    text = _scrape(client)
    values = {v for found in _label_values(text).values() for v in found}
    assert not {v for v in values if "@" in v or "%40" in v}, "an email address in a label"
    for secret in secrets | emails:
        assert secret not in text, f"{secret[:12]}... is on /metrics"
    assert 'app_logins_total{outcome="failure"}' in text  # the bad sign-ins were counted
