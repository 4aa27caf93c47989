"""Outgoing webhooks end to end on a loopback receiver that verifies them with the
`standardwebhooks` library, and the retry schedule on an injectable clock."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update
from standardwebhooks import Webhook

from app import create_app
from app.core.events import Actor
from app.core.mail import MemoryMailTransport
from app.core.netguard import Rules, parse_networks
from app.extensions import db
from app.jobs import webhooks as webhook_jobs
from app.jobs.runner import get_runner
from app.models import (
    Delivery,
    Item,
    OutboxMessage,
    User,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from app.services import items as item_service
from app.services import webhooks
from app.services.items import ItemCreate
from app.services.webhooks import Due, EndpointCreate, Outcome
from app.settings import get_settings
from tests.conftest import make_settings
from tests.factories import make_role_accounts
from tests.webhooks.receiver import Receiver, start_receiver

LOOPBACK = Rules(allow_http=True, allowed=parse_networks("127.0.0.1/32"))
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = start_receiver()
    yield found
    found.stop()


@pytest.fixture
def hooks_app(sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        make_settings(tmp_path, database_url=sqlite_url, webhook_allowed_networks="127.0.0.1/32")
    )
    app.extensions["mail"] = MemoryMailTransport()
    with app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    yield app
    db.dispose(app)


def _endpoint(app: Flask, url: str, events: list[str]) -> tuple[int, str]:
    with app.app_context(), db.transaction() as session:
        endpoint = webhooks.create_endpoint(
            session, EndpointCreate(url=url, events=events), LOOPBACK, actor=Actor()
        )
        return endpoint.id, endpoint.secret


def _create_item(app: Flask, name: str = "Lamp") -> int:
    with app.app_context(), db.transaction() as session:
        user = session.scalars(select(User).where(User.email == "user@example.com")).one()
        item = item_service.create_item(
            session,
            user,
            ItemCreate(name=name, price=Decimal("12.50")),
            actor=Actor(user_id=user.id),
        )
        return item.id


def _due_now(app: Flask) -> None:
    with app.app_context(), db.transaction() as session:
        session.execute(update(OutboxMessage).values(available_at=NOW - timedelta(days=1)))


def test_an_item_change_reaches_the_endpoint_signed_and_verifiable(
    hooks_app: Flask, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(hooks_app, receiver.url, ["item.created", "item.updated"])
    assert secret.startswith("whsec_")
    item_id = _create_item(hooks_app)
    assert get_runner(hooks_app).drain() == 1
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "item.created" and payload["data"]["id"] == item_id
    assert payload["data"]["price"] == "12.50" and "timestamp" in payload
    assert got.headers["webhook-id"].startswith("msg_") and len(got.body) < 20_000
    with hooks_app.app_context():
        delivery = db.session.scalars(select(Delivery).where(Delivery.channel == "webhook")).one()
        assert (delivery.state, delivery.attempts, delivery.recipient) == ("sent", 1, receiver.url)
        attempt = db.session.scalars(select(WebhookAttempt)).one()
        assert (attempt.status_code, attempt.response_excerpt) == (200, "ok")
    # an event the endpoint did not subscribe to sends nothing
    with hooks_app.app_context(), db.transaction() as session:
        item = session.get(Item, item_id)
        assert item is not None
        item_service.delete_item(session, item, actor=Actor())
    get_runner(hooks_app).drain()
    assert len(receiver.received) == 1 and endpoint_id


def test_retries_keep_the_webhook_id_and_rotation_signs_with_both_secrets(
    hooks_app: Flask, receiver: Receiver
) -> None:
    endpoint_id, old_secret = _endpoint(hooks_app, receiver.url, ["item.created"])
    receiver.answers.extend([(500, {}, "boom", 0.0)])
    _create_item(hooks_app)
    get_runner(hooks_app).drain()
    with hooks_app.app_context(), db.transaction() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        new_secret = webhooks.rotate_secret(session, endpoint, now=datetime.now(UTC))
    _due_now(hooks_app)
    get_runner(hooks_app).drain()
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # one message, two tries
    assert len(second.headers["webhook-signature"].split(" ")) == 2  # during the rotation
    assert Webhook(new_secret).verify(second.body, second.headers)
    assert Webhook(old_secret).verify(second.body, second.headers)
    with hooks_app.app_context():
        delivery = db.session.scalars(select(Delivery).where(Delivery.channel == "webhook")).one()
        assert (delivery.state, delivery.attempts) == ("sent", 2)
        assert [a.status_code for a in db.session.scalars(select(WebhookAttempt))] == [500, 200]


def _due(app: Flask, endpoint_url: str, attempt: int = 1) -> Due:
    endpoint_id, _ = _endpoint(app, endpoint_url, ["item.created"])
    with app.app_context(), db.transaction() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        message = webhooks.owe(session, endpoint, "item.created", {"id": 1}, now=NOW)
        due = webhooks.start_attempt(session, message.id, message.delivery_id or 0, now=NOW)
        assert due is not None
        return replace(due, attempt=attempt)


def _state(app: Flask, delivery_id: int) -> tuple[str, datetime | None]:
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery.state, delivery.next_retry_at


def test_the_schedule_with_jitter_then_failure(hooks_app: Flask) -> None:
    due = _due(hooks_app, "http://127.0.0.1:9/hooks")
    rng = random.Random(7)
    expected = webhooks.SCHEDULE[1:]
    for attempt, delay in enumerate(expected, start=1):
        with hooks_app.app_context(), db.transaction() as session:
            result = webhooks.record_attempt(
                session, replace(due, attempt=attempt), Outcome(status=500), now=NOW, rng=rng
            )
        state, next_at = _state(hooks_app, due.delivery_id)
        assert (result, state) == ("retrying", "retrying")
        assert next_at is not None
        waited = (next_at - NOW).total_seconds()
        assert delay * 0.9 <= waited <= delay * 1.1, (attempt, waited)
    with hooks_app.app_context(), db.transaction() as session:
        last = replace(due, attempt=len(webhooks.SCHEDULE))
        assert webhooks.record_attempt(session, last, Outcome(status=500), now=NOW) == "failed"
    assert _state(hooks_app, due.delivery_id) == ("failed", None)


@pytest.mark.parametrize(
    ("outcome", "least_wait"),
    [
        (Outcome(status=429, headers={"Retry-After": "3600"}), 3600),
        (Outcome(status=503, headers={"retry-after": "120"}), 120),
        (Outcome(status=302, headers={"Location": "https://elsewhere.example/"}), 4.5),
        (Outcome(error="ReadTimeoutError: read timed out"), 4.5),
    ],
)
def test_retry_after_redirects_and_timeouts(
    hooks_app: Flask, outcome: Outcome, least_wait: float
) -> None:
    due = _due(hooks_app, "http://127.0.0.1:9/hooks")
    with hooks_app.app_context(), db.transaction() as session:
        assert webhooks.record_attempt(session, due, outcome, now=NOW) == "retrying"
    state, next_at = _state(hooks_app, due.delivery_id)
    assert state == "retrying" and next_at is not None
    assert (next_at - NOW).total_seconds() >= least_wait
    with hooks_app.app_context():
        delivery = db.session.get(Delivery, due.delivery_id)
        assert delivery is not None and delivery.last_error
        if outcome.status == 302:
            assert "redirects are not followed" in delivery.last_error


def test_410_gone_disables_the_endpoint_and_tells_the_admins(hooks_app: Flask) -> None:
    due = _due(hooks_app, "http://127.0.0.1:9/hooks")
    with hooks_app.app_context(), db.transaction() as session:
        assert webhooks.record_attempt(session, due, Outcome(status=410), now=NOW) == "disabled"
    with hooks_app.app_context():
        endpoint = db.session.scalars(select(WebhookEndpoint)).one()
        assert not endpoint.enabled and "410" in (endpoint.disabled_reason or "")
    get_runner(hooks_app).drain()
    transport: MemoryMailTransport = hooks_app.extensions["mail"]
    assert [m.to for m in transport.outbox] == ["admin@example.com"]
    assert "turned off" in transport.outbox[0].subject


def test_five_days_of_failures_disable_the_endpoint(hooks_app: Flask) -> None:
    due = _due(hooks_app, "http://127.0.0.1:9/hooks")
    with hooks_app.app_context(), db.transaction() as session:
        assert webhooks.record_attempt(session, due, Outcome(status=500), now=NOW) == "retrying"
    later = NOW + timedelta(days=5, minutes=1)
    with hooks_app.app_context(), db.transaction() as session:
        assert webhooks.record_attempt(session, due, Outcome(status=500), now=later) == "disabled"


def test_a_timeout_is_a_failed_attempt(
    hooks_app: Flask, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_jobs, "TIMEOUT_SECONDS", 0.2)
    receiver.answers.append((200, {}, "late", 1.0))
    due = _due(hooks_app, receiver.url)
    with hooks_app.app_context():
        outcome = webhook_jobs.attempt(due)
    assert outcome.status is None and "Timeout" in (outcome.error or "")


def test_a_name_that_rebinds_to_loopback_is_refused_at_delivery(
    hooks_app: Flask, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = receiver.server.server_address[1]
    public = Rules(allow_http=True, allowed=(), resolve=lambda h, p: ["93.184.216.34"])
    with hooks_app.app_context(), db.transaction() as session:  # registered while it was public
        endpoint = webhooks.create_endpoint(
            session,
            EndpointCreate(url=f"http://hooks.example.test:{port}/hooks", events=["item.created"]),
            public,
            actor=Actor(),
        )
        message = webhooks.owe(session, endpoint, "item.created", {"id": 1}, now=NOW)
        due = webhooks.start_attempt(session, message.id, message.delivery_id or 0, now=NOW)
    assert due is not None
    monkeypatch.setattr(webhook_jobs, "resolver", lambda host, port: ["127.0.0.1"])  # rebinding
    # The app allowlists 127.0.0.1 for the other tests; here nothing is, so the guard decides.
    with hooks_app.app_context():
        strict = dataclasses.replace(get_settings(), webhook_allowed_networks="")
        monkeypatch.setitem(hooks_app.extensions, "settings", strict)
        outcome = webhook_jobs.attempt(due)
    assert outcome.status is None and (outcome.error or "").startswith("refused:")
    assert receiver.connections == 0  # the loopback listener never saw a connection


def test_replay_resends_a_window_with_the_same_ids(hooks_app: Flask, receiver: Receiver) -> None:
    endpoint_id, secret = _endpoint(hooks_app, receiver.url, ["item.created"])
    _create_item(hooks_app, "One")
    _create_item(hooks_app, "Two")
    get_runner(hooks_app).drain()
    ids = [r.headers["webhook-id"] for r in receiver.received]
    with hooks_app.app_context(), db.transaction() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        now = datetime.now(UTC)
        window = webhooks.ReplayWindow(since=now - timedelta(hours=1), until=now)
        count = webhooks.replay(session, endpoint, window, now=now)
    assert count == 2
    get_runner(hooks_app).drain()
    assert [r.headers["webhook-id"] for r in receiver.received[2:]] == ids
    assert all(Webhook(secret).verify(r.body, r.headers) for r in receiver.received)
    with hooks_app.app_context():
        assert db.session.scalar(select(WebhookMessage.id).limit(1))
