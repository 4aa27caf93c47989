"""Concurrency on PostgreSQL, where requests really run side by side (SQLite serialises
every writer): ten submits of one checkout charge once, ten deliveries of one Stripe
event change the payment once, and an event arriving while its payment is being linked
to the intent is not left behind. The app commits, so it gets a database of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from app.core.events import SYSTEM
from app.extensions import db
from app.models.audit import AuditLog
from app.models.base import Base
from app.models.payment import Payment, PaymentEvent
from app.services.payment_outcomes import record_result
from app.services.payment_providers import ProviderResult
from tests.faults.databases import own_database
from tests.payments.conftest import payments_app
from tests.payments.fake_paypal import FakePayPal
from tests.payments.proxy import RecordingProxy
from tests.payments.test_service import pay
from tests.payments.test_stripe_webhooks import event, pending_payment, send, status_of

pytestmark = pytest.mark.postgres

THREADS = 10


@pytest.fixture(scope="module")
def payments_db() -> Iterator[str]:
    with own_database("payments") as url:
        yield url


@pytest.fixture
def app(
    payments_db: str, tmp_path: Path, stripe_proxy: RecordingProxy, fake_paypal: FakePayPal
) -> Iterator[Flask]:
    """An app on PostgreSQL paying through the recording proxy in front of localstripe; its
    tables are emptied afterwards."""
    built = payments_app(
        tmp_path, payments_db, stripe_api_base=stripe_proxy.url, paypal_api_base=fake_paypal.url
    )
    assert db.engine_for(built).dialect.name == "postgresql"
    yield built
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with built.app_context(), db.transaction() as session:
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose(built)


def together(call: Callable[[], Any]) -> list[Any]:
    """Run `call` in THREADS threads released at the same moment; results or exceptions."""
    start = threading.Barrier(THREADS)
    results: list[Any] = []

    def run() -> None:
        start.wait()
        try:
            results.append(call())
        except Exception as exc:  # collected: the assertions name it
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_ten_concurrent_submits_of_one_checkout_charge_once(
    app: Flask, stripe_proxy: RecordingProxy, fake_paypal: FakePayPal
) -> None:
    results = together(lambda: pay(app, "pm_card_visa", key="checkout-pg").id)
    assert len(results) == THREADS and len(set(results)) == 1, results
    intents = [p for p in stripe_proxy.posts("/v1/payment_intents") if "/confirm" not in p.path]
    assert len(intents) == 1
    assert len(stripe_proxy.posts("/confirm")) == 1
    assert fake_paypal.requests == []
    with app.app_context():
        (payment,) = db.session.query(Payment).all()
        assert (payment.id, payment.status) == (results[0], "succeeded")
        succeeded = db.session.query(AuditLog).filter_by(event_type="payment.succeeded")
        assert succeeded.count() == 1


def test_ten_concurrent_duplicate_webhooks_change_the_state_once(app: Flask) -> None:
    pid = pending_payment(app, "pi_pg_dup")
    body = event("payment_intent.succeeded", {"id": "pi_pg_dup"}, "evt_pg_dup")

    def deliver() -> tuple[int, bool]:
        answer = send(app, body)
        return answer.status_code, answer.json["applied"]

    answers = together(deliver)
    assert sorted(answers) == [(200, False)] * (THREADS - 1) + [(200, True)], answers
    assert status_of(app, pid) == "succeeded"
    with app.app_context():
        rows = db.session.query(PaymentEvent).filter_by(event_id="evt_pg_dup").all()
        assert len(rows) == 1 and rows[0].processed
        succeeded = db.session.query(AuditLog).filter_by(event_type="payment.succeeded")
        assert succeeded.count() == 1


def test_an_event_arriving_during_the_link_is_applied_once_the_link_commits(app: Flask) -> None:
    pid = pending_payment(app, "pi_pg_race")
    with app.app_context(), db.transaction() as session:
        session.get(Payment, pid).provider_ref = None  # our intent call has not answered yet
    linking = threading.Event()

    def link() -> None:
        """Our answer arrives: link the payment, and commit only after the webhook came."""
        with app.app_context(), db.transaction() as session:
            answer = ProviderResult(status="pending", reference="pi_pg_race")
            record_result(session, pid, "stripe", answer, SYSTEM)
            linking.set()
            time.sleep(0.5)

    linker = threading.Thread(target=link)
    linker.start()
    assert linking.wait(10)
    body = event("payment_intent.succeeded", {"id": "pi_pg_race"}, "evt_pg_race")
    answer = send(app, body)  # waits for the link to commit, then finds its payment
    linker.join(10)
    assert (answer.status_code, answer.json["applied"]) == (200, True)
    assert status_of(app, pid) == "succeeded"
    with app.app_context():
        assert db.session.query(PaymentEvent).filter_by(processed=False).count() == 0
