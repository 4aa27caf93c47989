"""The outbox in the embedded default: what a change owes is written with it and sent once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import create_app
from app.core.events import SYSTEM
from app.core.mail import Mail, MemoryMailTransport
from app.extensions import db
from app.jobs.dispatch import run
from app.jobs.runner import get_runner
from app.models import Delivery, OutboxMessage
from app.services import accounts, deliveries
from app.services.outbox import Message
from tests.conftest import login, make_settings
from tests.factories import PASSWORD, make_user


@pytest.fixture
def jobs_app(sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app whose outbox runs only when the test drains it, mail kept in memory."""
    app = create_app(make_settings(tmp_path, database_url=sqlite_url))
    app.config["WTF_CSRF_ENABLED"] = False
    app.extensions["mail"] = MemoryMailTransport()
    yield app
    db.dispose(app)


def _sent(app: Flask) -> list[Mail]:
    transport: MemoryMailTransport = app.extensions["mail"]
    return transport.outbox


def _deliveries(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(Delivery).order_by(Delivery.id))
        return [(d.kind, d.recipient, d.state) for d in rows]


def test_a_sign_up_owes_one_welcome_email_and_it_is_sent_once(jobs_app: Flask) -> None:
    client = jobs_app.test_client()
    form = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    assert client.post("/register", data={**form, "confirm_password": PASSWORD}).status_code == 303
    assert _sent(jobs_app) == []  # owed, not sent inside the request
    assert _deliveries(jobs_app) == [("welcome", "ada@example.com", "pending")]
    assert get_runner(jobs_app).drain() == 1
    [mail] = _sent(jobs_app)
    assert (mail.to, mail.subject) == ("ada@example.com", "Welcome to Ledgerly")
    assert "Hello Ada" in mail.text and "http://localhost/login" in mail.text
    assert mail.html is not None and "Sign in" in mail.html
    assert mail.message_id and mail.message_id.startswith("<delivery-")
    assert _deliveries(jobs_app) == [("welcome", "ada@example.com", "sent")]
    with jobs_app.app_context():  # the same message run again (a redelivery) sends nothing
        row = db.session.scalars(select(OutboxMessage)).one()
        run(Message(row.id, row.kind, dict(row.payload)), retry_in=None)
    assert get_runner(jobs_app).drain() == 0
    assert len(_sent(jobs_app)) == 1


def test_a_rolled_back_change_owes_nothing(jobs_app: Flask) -> None:
    with jobs_app.app_context(), pytest.raises(RuntimeError), db.transaction() as session:
        accounts.register(
            session,
            email="ghost@example.com",
            name="Ghost",
            password=PASSWORD,
            confirm=PASSWORD,
            iterations=1000,
            ip=None,
        )
        raise RuntimeError("the request failed after the sign-up")
    with jobs_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert get_runner(jobs_app).drain() == 0 and _sent(jobs_app) == []


def test_accounts_created_by_others_get_no_welcome(jobs_app: Flask) -> None:
    with jobs_app.app_context(), db.transaction() as session:
        make_user(session, "made@example.com", actor=SYSTEM)
    assert get_runner(jobs_app).drain() == 0 and _deliveries(jobs_app) == []


def test_security_notices_go_to_the_right_addresses(jobs_app: Flask) -> None:
    with jobs_app.app_context(), db.transaction() as session:
        make_user(session, "ada@example.com", name="Ada")
    client = jobs_app.test_client()
    login(client, "ada@example.com")
    changed = client.post(
        "/profile",
        data={"name": "Ada", "email": "ada@new.example.com", "email_password": PASSWORD},
    )
    assert changed.status_code == 200
    client.post(
        "/profile/password",
        data={
            "current_password": PASSWORD,
            "new_password": "another long secret",
            "confirm_password": "another long secret",
        },
    )
    get_runner(jobs_app).drain()
    sent = {(m.to, m.subject) for m in _sent(jobs_app)}
    assert sent == {
        ("ada@example.com", "Your Ledgerly email address was changed"),  # the old address
        ("ada@new.example.com", "Your Ledgerly password was changed"),
    }


class _Flaky(MemoryMailTransport):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def send(self, mail: Mail) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("the SMTP server is down")
        super().send(mail)


def test_a_failing_email_is_retried_then_failed_and_retry_now_sends_it(jobs_app: Flask) -> None:
    transport = jobs_app.extensions["mail"] = _Flaky(failures=99)
    client = jobs_app.test_client()
    client.post("/forgot", data={"email": "nobody@example.com"})  # owes nothing
    with jobs_app.app_context(), db.transaction() as session:
        make_user(session, "ada@example.com")
    client.post("/forgot", data={"email": "ada@example.com"})
    runner = get_runner(jobs_app)
    assert runner.drain() == 1
    with jobs_app.app_context():
        delivery = db.session.scalars(select(Delivery)).one()
        assert (delivery.state, delivery.attempts) == ("retrying", 1)
        assert "SMTP server is down" in (delivery.last_error or "")
        assert delivery.next_retry_at is not None
        message = db.session.get(OutboxMessage, delivery.message_id)
        assert message is not None and message.published_at is None  # waiting for its retry
    with jobs_app.app_context(), db.transaction() as session:  # make every retry due now
        for row in session.scalars(select(OutboxMessage)):
            row.available_at = row.created_at
    for _ in range(5):
        runner.drain()
        with jobs_app.app_context(), db.transaction() as session:
            for row in session.scalars(select(OutboxMessage)):
                row.available_at = row.created_at
    with jobs_app.app_context():
        delivery = db.session.scalars(select(Delivery)).one()
        assert (delivery.state, delivery.attempts) == ("failed", 6)
    transport.failures = 0
    with jobs_app.app_context(), db.transaction() as session:
        deliveries.retry_now(session, delivery.id, actor=SYSTEM)
    assert runner.drain() == 1
    assert [m.to for m in transport.outbox] == ["ada@example.com"]
    assert _deliveries(jobs_app) == [("reset_password", "ada@example.com", "sent")]


def test_readiness_and_metrics_show_the_backlog(jobs_app: Flask) -> None:
    client = jobs_app.test_client()
    form = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    client.post("/register", data={**form, "confirm_password": PASSWORD})
    ready = client.get("/readyz").json
    assert ready is not None and ready["outbox"]["pending"] == 1
    assert ready["outbox"]["lagging"] is False
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "app_outbox_pending 1.0" in metrics
    get_runner(jobs_app).drain()
    assert client.get("/readyz").json["outbox"]["pending"] == 0  # type: ignore[index]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "app_outbox_pending 0.0" in metrics
    assert 'app_emails_total{outcome="sent"}' in metrics
    assert 'app_job_duration_seconds_count{queue="emails"}' in metrics
