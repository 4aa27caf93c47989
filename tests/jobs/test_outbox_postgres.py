"""The outbox on a committed PostgreSQL database: what a sign-up pays for its welcome
email, and the NOTIFY that wakes the relay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy import event, select

from app import create_app
from app.core.events import EventBus
from app.extensions import db
from app.models import Delivery, OutboxMessage, User
from app.services.outbox import NOTIFY_CHANNEL, OutboxHandler, add_message
from tests.conftest import make_settings
from tests.factories import PASSWORD
from tests.faults.databases import own_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def outbox_db() -> Iterator[str]:
    with own_database("outboxpg") as url:
        yield url


@pytest.fixture
def pg_jobs_app(outbox_db: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, database_url=outbox_db, jobs_mode="manual"))
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    db.dispose(app)


def _sign_up(app: Flask, email: str) -> int:
    """SQL statements the sign-up ran."""
    counted = [0]

    def count(*_: object) -> None:
        counted[0] += 1

    engine = db.engine_for(app)
    event.listen(engine, "before_cursor_execute", count)
    try:
        form = {"email": email, "name": "Ada", "password": PASSWORD}
        response = app.test_client().post("/register", data={**form, "confirm_password": PASSWORD})
        assert response.status_code == 303
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return counted[0]


def test_a_welcome_email_costs_a_sign_up_one_statement_and_commits_linked(
    pg_jobs_app: Flask,
) -> None:
    bus = EventBus.get_instance()
    _sign_up(pg_jobs_app, "warm@example.com")  # connections and caches warm
    bus.unsubscribe("outbox")
    try:
        without = _sign_up(pg_jobs_app, "plain@example.com")
    finally:
        bus.subscribe(OutboxHandler())
    with_email = _sign_up(pg_jobs_app, "ada@example.com")
    assert with_email - without == 1  # the ledger entry and its message, in one statement

    with pg_jobs_app.app_context():
        delivery = db.session.scalars(
            select(Delivery).where(Delivery.recipient == "ada@example.com")
        ).one()
        assert (delivery.kind, delivery.state, delivery.attempts) == ("welcome", "pending", 0)
        assert delivery.summary == "Welcome to Ledgerly" and delivery.created_at is not None
        message = db.session.get(OutboxMessage, delivery.message_id)
        assert message is not None and message.kind == "email.welcome"
        assert message.payload["delivery_id"] == delivery.id
        assert message.payload["user_id"] == delivery_user_id(pg_jobs_app, "ada@example.com")
        assert message.published_at is None and message.available_at is not None
        later = add_message(db.session, "job.noop", {})  # the sequence moved past it
        assert later.id > message.id
        db.session.rollback()


def delivery_user_id(app: Flask, email: str) -> int:
    with app.app_context():
        return db.session.scalars(select(User.id).where(User.email == email)).one()


def test_a_committed_outbox_row_notifies_the_relay_and_a_rolled_back_one_does_not(
    pg_jobs_app: Flask, outbox_db: str
) -> None:
    with psycopg.connect(outbox_db.replace("+psycopg", ""), autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        with pg_jobs_app.app_context():
            add_message(db.session, "job.noop", {})
            db.session.rollback()
        assert list(listener.notifies(timeout=0.5)) == []
        with pg_jobs_app.app_context():
            add_message(db.session, "job.noop", {})
            db.session.commit()
        [note] = list(listener.notifies(timeout=2, stop_after=1))
        assert note.channel == NOTIFY_CHANNEL
