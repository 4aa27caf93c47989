"""The webhook admin pages: register with field messages, the secret shown once, deliveries
with their attempts, test events, retries, replay, rotation, pause and delete."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from standardwebhooks import Webhook

from app.extensions import db
from app.models import AuditLog, WebhookEndpoint
from tests.conftest import login
from tests.webhooks.receiver import Receiver

SECRET = re.compile(r'id="webhook-secret"[^>]*value="(whsec_[A-Za-z0-9+/=]+)"')


@pytest.fixture
def admin(api_app: Flask) -> FlaskClient:
    client = api_app.test_client()
    assert login(client, "admin@example.com").status_code == 303
    return client


def add_endpoint(admin: FlaskClient, url: str, events: list[str]) -> tuple[str, str]:
    """Submit the form; returns the endpoint page's path and the secret it showed."""
    answer = admin.post("/admin/webhooks", data={"url": url, "events": events})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    page = admin.get(answer.headers["Location"]).get_data(as_text=True)
    found = SECRET.search(page)
    assert found, "the new endpoint's page shows its secret"
    return answer.headers["Location"], found.group(1)


def test_the_secret_is_shown_once_and_deliveries_show_the_answer(
    api_app: Flask, admin: FlaskClient, receiver: Receiver
) -> None:
    path, secret = add_endpoint(admin, receiver.url, ["item.created"])
    again = admin.get(path).get_data(as_text=True)
    assert secret not in again and "whsec_••••" in again
    assert "Nothing sent yet" in again

    assert admin.post(f"{path}/test").status_code == 303
    [got] = receiver.received
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    page = admin.get(path).get_data(as_text=True)
    assert "webhook.test" in page and got.headers["webhook-id"] in page
    assert "HTTP 200" in page and '<pre class="response">ok</pre>' in page
    assert 'class="badge badge-sent"' in page

    delivery_id = re.search(r'id="webhook-delivery-(\d+)"', page).group(1)  # type: ignore[union-attr]
    assert admin.post(f"{path}/deliveries/{delivery_id}/retry").status_code == 303
    assert [r.headers["webhook-id"] for r in receiver.received] == [got.headers["webhook-id"]] * 2

    answer = admin.post(f"{path}/replay", data={"window": "1h"}, follow_redirects=True)
    assert "Replaying 1 message from the last hour." in answer.get_data(as_text=True)
    assert len(receiver.received) == 3

    with api_app.app_context():
        kinds = db.session.scalars(select(AuditLog.event_type)).all()
        assert "webhook.endpoint_created" in kinds


def test_rotation_shows_the_new_secret_once_and_signs_with_both(
    admin: FlaskClient, receiver: Receiver
) -> None:
    path, old = add_endpoint(admin, receiver.url, ["item.created"])
    page = admin.post(f"{path}/rotate", follow_redirects=True).get_data(as_text=True)
    new = SECRET.search(page).group(1)  # type: ignore[union-attr]
    assert new != old and "the previous secret also signs until" in page
    admin.post(f"{path}/test")
    [got] = receiver.received
    assert Webhook(old).verify(got.body, got.headers) == Webhook(new).verify(got.body, got.headers)


def test_pause_resume_and_delete(api_app: Flask, admin: FlaskClient, receiver: Receiver) -> None:
    path, _ = add_endpoint(admin, receiver.url, ["item.created"])
    paused = admin.post(f"{path}/enabled", data={"enabled": "0"}, follow_redirects=True)
    assert "Sending paused." in paused.get_data(as_text=True)
    admin.post("/items", data={"name": "Lamp", "price": "3.00", "status": "active"})
    assert receiver.received == []
    admin.post(f"{path}/enabled", data={"enabled": "1"})
    admin.post("/items", data={"name": "Desk", "price": "3.00", "status": "active"})
    assert len(receiver.received) == 1
    gone = admin.post(f"{path}/delete", follow_redirects=True).get_data(as_text=True)
    assert "Removed the endpoint" in gone and "No endpoints yet" in gone
    assert admin.get(path).status_code == 404


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"url": "", "events": ["item.created"]}, "url", "Enter the URL to send events to."),
        ({"url": "http://169.254.169.254/", "events": ["item.created"]}, "url", "private"),
        ({"url": "ftp://example.com/", "events": ["item.created"]}, "url", "https://"),
        ({"url": "https://example.com/", "events": []}, "events", "Choose at least one."),
        ({"url": "https://example.com/", "events": ["item.exploded"]}, "events", "must be one"),
        (
            {"url": "https://example.com/", "events": ["item.created"], "description": "x" * 501},
            "description",
            "at most 500",
        ),
    ],
)
def test_bad_input_is_422_beside_the_field_and_saves_nothing(
    api_app: Flask, admin: FlaskClient, form: dict[str, object], field: str, message: str
) -> None:
    answer = admin.post("/admin/webhooks", data=form)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    error = re.search(rf'id="e-{field}">([^<]*)<', page)
    assert error and message in error.group(1)
    assert f'value="{form["url"]}"' in page  # what was typed stays
    with api_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_every_bad_field_is_named_at_once(admin: FlaskClient) -> None:
    answer = admin.post("/admin/webhooks", data={"url": "http://10.0.0.1/", "events": []})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'id="e-url"' in page and 'id="e-events"' in page


def test_only_admins(api_app: Flask, receiver: Receiver) -> None:
    client = api_app.test_client()
    login(client, "user@example.com")
    assert client.get("/admin/webhooks").status_code == 403
    answer = client.post("/admin/webhooks", data={"url": receiver.url, "events": ["item.created"]})
    assert answer.status_code == 403
    with api_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
