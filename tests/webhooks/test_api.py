"""/api/v1/webhooks as an integrator uses it: register, receive signed deliveries, inspect
attempts, retry, rotate, replay; and every way a request can be refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from standardwebhooks import Webhook

from app.extensions import db
from app.models import Delivery, WebhookEndpoint
from tests.webhooks.receiver import Receiver

Headers = dict[str, dict[str, str]]
PROBLEM = "application/problem+json"
PUBLIC = "https://93.184.216.34/h"  # a public literal: nothing to resolve, never connected to


def register(api: FlaskClient, tokens: Headers, url: str, events: list[str]) -> dict[str, Any]:
    body = {"url": url, "events": events, "description": "orders system"}
    response = api.post("/api/v1/webhooks", json=body, headers=tokens["admin"])
    assert response.status_code == 201, response.json
    return dict(response.json or {})


def create_item(api: FlaskClient, tokens: Headers, name: str = "Lamp") -> int:
    response = api.post(
        "/api/v1/items", json={"name": name, "price": "12.50"}, headers=tokens["user"]
    )
    assert response.status_code == 201, response.json
    return int((response.json or {})["id"])


def deliveries(api: FlaskClient, tokens: Headers, endpoint_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=tokens["admin"])
    assert response.status_code == 200, response.json
    return list((response.json or {})["items"])


def test_register_then_receive_inspect_and_retry(
    api: FlaskClient, tokens: Headers, receiver: Receiver
) -> None:
    created = register(api, tokens, receiver.url, ["item.created"])
    assert set(created) >= {"id", "url", "events", "secret"}
    assert created["events"] == ["item.created"] and created["enabled"] is True
    secret = created["secret"]
    assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:])) <= 64
    listed = api.get("/api/v1/webhooks", headers=tokens["admin"]).json or {}
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]  # shown once, at creation
    one = api.get(f"/api/v1/webhooks/{created['id']}", headers=tokens["admin"])
    assert one.status_code == 200 and "secret" not in (one.json or {})

    item_id = create_item(api, tokens)
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "item.created" and payload["data"]["id"] == item_id

    [delivery] = deliveries(api, tokens, created["id"])
    assert delivery["webhook_id"] == got.headers["webhook-id"] and delivery["state"] == "sent"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200 and attempt["response_excerpt"] == "ok"

    retried = api.post(
        f"/api/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/retry",
        headers=tokens["admin"],
    )
    assert retried.status_code == 202, retried.json
    first, second = receiver.received
    assert second.headers["webhook-id"] == first.headers["webhook-id"]  # receivers dedupe
    assert Webhook(secret).verify(second.body, second.headers) == payload
    [delivery] = deliveries(api, tokens, created["id"])
    assert [a["status_code"] for a in delivery["attempts"]] == [200, 200]


def test_a_delivery_still_being_attempted_is_not_sent_twice(
    api: FlaskClient, tokens: Headers, receiver: Receiver
) -> None:
    created = register(api, tokens, receiver.url, ["item.created"])
    receiver.answers.append((503, {"Retry-After": "120"}, "busy", 0.0))
    create_item(api, tokens)
    [delivery] = deliveries(api, tokens, created["id"])
    assert delivery["state"] == "retrying" and delivery["last_error"] == "HTTP 503"
    assert delivery["next_retry_at"] is not None
    answer = api.post(
        f"/api/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/retry",
        headers=tokens["admin"],
    )
    assert answer.status_code == 409 and answer.content_type == PROBLEM
    assert len(receiver.received) == 1
    other = api.post(
        f"/api/v1/webhooks/{created['id']}/deliveries/999999/retry", headers=tokens["admin"]
    )
    assert other.status_code == 404


def test_rotation_signs_with_both_secrets_and_the_test_event(
    api: FlaskClient, tokens: Headers, receiver: Receiver
) -> None:
    created = register(api, tokens, receiver.url, ["item.created"])
    rotated = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=tokens["admin"])
    assert rotated.status_code == 200
    new = (rotated.json or {})["secret"]
    assert new != created["secret"] and new.startswith("whsec_")
    expires = datetime.fromisoformat((rotated.json or {})["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)

    sent = api.post(f"/api/v1/webhooks/{created['id']}/test", headers=tokens["admin"])
    assert sent.status_code == 202 and (sent.json or {})["type"] == "webhook.test"
    [got] = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (created["secret"], new):
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload == {
            "type": "webhook.test",
            "timestamp": payload["timestamp"],
            "data": {"endpoint_id": created["id"]},
        }


def test_replay_a_window_with_the_same_ids(
    api: FlaskClient, tokens: Headers, receiver: Receiver
) -> None:
    created = register(api, tokens, receiver.url, ["item.created"])
    create_item(api, tokens, "One")
    create_item(api, tokens, "Two")
    now = datetime.now(UTC)
    window = {"since": (now - timedelta(hours=1)).isoformat(), "until": now.isoformat()}
    url = f"/api/v1/webhooks/{created['id']}/replay"
    answer = api.post(url, json=window, headers=tokens["admin"])
    assert answer.status_code == 202 and answer.json == {"replayed": 2}
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids[2:] == ids[:2]
    backwards = {"since": window["until"], "until": window["since"]}
    refused = api.post(url, json=backwards, headers=tokens["admin"])
    assert refused.status_code == 422 and "window must end" in str(refused.json)
    too_long = {"since": (now - timedelta(days=40)).isoformat(), "until": now.isoformat()}
    assert api.post(url, json=too_long, headers=tokens["admin"]).status_code == 422
    assert len(receiver.received) == 4


def test_patch_and_delete(api: FlaskClient, tokens: Headers, receiver: Receiver) -> None:
    created = register(api, tokens, receiver.url, ["item.created"])
    url = f"/api/v1/webhooks/{created['id']}"
    patched = api.patch(
        url, json={"events": ["item.deleted"], "enabled": False}, headers=tokens["admin"]
    )
    assert patched.status_code == 200
    assert (patched.json or {})["events"] == ["item.deleted"]
    assert (patched.json or {})["enabled"] is False
    create_item(api, tokens)
    assert receiver.received == []  # neither subscribed nor enabled
    assert api.delete(url, headers=tokens["admin"]).status_code == 204
    assert api.get(url, headers=tokens["admin"]).status_code == 404
    assert api.delete(url, headers=tokens["admin"]).status_code == 404


REFUSED_URLS = (
    "http://127.0.0.1/hooks",  # allowlisted networks are for named hosts below: not this one
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://10.0.0.8/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://localhost:5000/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://user:pw@example.com/",
    "not a url",
)


@pytest.fixture
def strict(api_app: Flask) -> None:
    """No allowlisted network, as in a default production set-up."""
    from dataclasses import replace

    settings = api_app.extensions["settings"]
    api_app.extensions["settings"] = replace(settings, webhook_allowed_networks="")


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_registration_refuses_our_own_network(
    api: FlaskClient, tokens: Headers, strict: None, url: str
) -> None:
    body = {"url": url, "events": ["item.created"]}
    answer = api.post("/api/v1/webhooks", json=body, headers=tokens["admin"])
    assert answer.status_code == 422 and answer.content_type == PROBLEM
    assert set((answer.json or {})["errors"]) == {"url"}


def test_plain_http_is_refused_where_the_setting_says_so(
    api_app: Flask, api: FlaskClient, tokens: Headers, receiver: Receiver
) -> None:
    from dataclasses import replace

    api_app.extensions["settings"] = replace(
        api_app.extensions["settings"], webhook_allow_http=False
    )
    body = {"url": receiver.url, "events": ["item.created"]}
    answer = api.post("/api/v1/webhooks", json=body, headers=tokens["admin"])
    assert answer.status_code == 422
    assert (answer.json or {})["errors"]["url"].startswith("Use https://")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"url": "", "events": ["item.created"]}, {"url"}),
        ({"url": PUBLIC, "events": ["item.exploded"]}, {"events.0"}),
        ({"url": PUBLIC, "events": []}, {"events"}),
        (
            {"url": PUBLIC, "events": ["item.created"], "description": "x" * 501},
            {"description"},
        ),
        ({"events": ["item.created"], "secret": "whsec_mine"}, {"url", "secret"}),
        ({"url": "http://10.0.0.1/", "events": ["item.exploded"]}, {"url", "events.0"}),
    ],
)
def test_bad_fields_are_named(
    api: FlaskClient, tokens: Headers, body: dict[str, Any], fields: set[str]
) -> None:
    answer = api.post("/api/v1/webhooks", json=body, headers=tokens["admin"])
    assert answer.status_code == 422 and answer.content_type == PROBLEM
    assert set((answer.json or {})["errors"]) == fields


def test_only_admins(api_app: Flask, api: FlaskClient, tokens: Headers) -> None:
    body = {"url": "https://example.com/h", "events": ["item.created"]}
    assert api.post("/api/v1/webhooks", json=body).status_code == 401
    for role in ("user", "guest"):
        assert api.post("/api/v1/webhooks", json=body, headers=tokens[role]).status_code == 403
        assert api.get("/api/v1/webhooks", headers=tokens[role]).status_code == 403
    with api_app.app_context():
        assert db.session.scalar(select(WebhookEndpoint.id)) is None
        assert db.session.scalar(select(Delivery.id)) is None
