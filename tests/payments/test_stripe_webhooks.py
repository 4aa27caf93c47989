"""POST /webhooks/stripe: signatures on the raw body, timestamps both ways, duplicates and
events out of order, and what a state change sends on (emails, outgoing webhooks)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask

from app.extensions import db
from app.jobs.runner import get_runner
from app.models.audit import AuditLog
from app.models.messaging import Delivery
from app.models.payment import Payment, PaymentEvent
from tests.payments.conftest import item_id

SECRET = "whsec_test_ledgerly"


def sign(body: bytes, *, at: int | None = None, secret: str = SECRET) -> str:
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def event(kind: str, obj: dict[str, Any], event_id: str) -> bytes:
    return json.dumps({"id": event_id, "type": kind, "data": {"object": obj}}).encode()


def send(app: Flask, body: bytes, header: str | None = None) -> Any:
    return app.test_client().post(
        "/webhooks/stripe",
        data=body,
        headers={
            "Stripe-Signature": header if header is not None else sign(body),
            "Content-Type": "application/json",
        },
    )


def pending_payment(app: Flask, ref: str = "pi_test_1") -> int:
    """A payment whose intent exists and whose outcome we have not heard yet."""
    from app.models.user import User

    with app.app_context(), db.transaction() as session:
        user = session.query(User).filter_by(email="user@example.com").one()
        payment = Payment(
            user_id=user.id,
            item_id=item_id(app),
            item_name="Lamp",
            amount=1234,
            currency="usd",
            status="pending",
            provider="stripe",
            provider_ref=ref,
            idempotency_key=f"hook-{ref}",
        )
        session.add(payment)
        session.flush()
        return payment.id


def status_of(app: Flask, payment_id: int) -> str:
    with app.app_context():
        return db.session.get(Payment, payment_id).status


def test_a_signed_event_moves_the_payment_once(app: Flask) -> None:
    pid = pending_payment(app)
    body = event("payment_intent.succeeded", {"id": "pi_test_1", "latest_charge": "ch_1"}, "evt_1")
    answer = send(app, body)
    assert answer.status_code == 200 and answer.json["applied"] is True
    assert status_of(app, pid) == "succeeded"
    again = send(app, body)
    assert again.status_code == 200 and again.json["duplicate"] is True


def test_bad_signatures_stale_and_future_timestamps_are_refused(app: Flask) -> None:
    pid = pending_payment(app)
    body = event("payment_intent.succeeded", {"id": "pi_test_1"}, "evt_2")
    assert send(app, body, sign(body, secret="whsec_other")).status_code == 400
    assert send(app, body, sign(body, at=int(time.time()) - 301)).status_code == 400
    assert send(app, body, sign(body, at=int(time.time()) + 301)).status_code == 400
    assert send(app, body, "").status_code == 400
    reserialised = json.dumps(json.loads(body), indent=2).encode()  # same JSON, other bytes
    assert send(app, reserialised, sign(body)).status_code == 400
    assert status_of(app, pid) == "pending"
    with app.app_context():
        assert db.session.query(PaymentEvent).count() == 0
    assert send(app, body, sign(body, at=int(time.time()) + 200)).status_code == 200  # skew ok


def test_ten_concurrent_duplicates_change_the_state_once(app: Flask) -> None:
    pid = pending_payment(app)
    body = event("payment_intent.succeeded", {"id": "pi_test_1"}, "evt_dup")
    answers: list[Any] = []

    def deliver() -> None:
        response = send(app, body)
        answers.append((response.status_code, response.json.get("applied")))

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers, key=str) == sorted([(200, True)] + [(200, False)] * 9, key=str)
    assert status_of(app, pid) == "succeeded"
    with app.app_context():
        assert db.session.query(PaymentEvent).filter_by(event_id="evt_dup").count() == 1
        succeeded = db.session.query(AuditLog).filter_by(event_type="payment.succeeded")
        assert succeeded.count() == 1


def test_events_out_of_order_never_move_a_payment_back(app: Flask) -> None:
    pid = pending_payment(app)
    refunded = event(
        "charge.refunded",
        {"id": "ch_1", "payment_intent": "pi_test_1", "amount_refunded": 234},
        "evt_c",
    )
    succeeded = event("payment_intent.succeeded", {"id": "pi_test_1"}, "evt_a")
    failed = event(
        "payment_intent.payment_failed",
        {"id": "pi_test_1", "last_payment_error": {"code": "card_declined"}},
        "evt_b",
    )
    assert send(app, succeeded).status_code == 200
    assert send(app, refunded).status_code == 200
    assert status_of(app, pid) == "partially_refunded"
    assert send(app, failed).json["applied"] is False  # late: the payment went past it
    assert status_of(app, pid) == "partially_refunded"
    with app.app_context():
        assert db.session.get(Payment, pid).decline_code is None


def test_unknown_types_answer_200_and_are_kept(app: Flask) -> None:
    body = event("customer.created", {"id": "cus_1"}, "evt_unknown")
    answer = send(app, body)
    assert answer.status_code == 200 and answer.json["applied"] is False
    with app.app_context():
        row = db.session.query(PaymentEvent).filter_by(event_id="evt_unknown").one()
        assert row.processed and row.raw == body.decode()


def test_a_success_sends_a_receipt_and_a_refund_a_notice(app: Flask) -> None:
    pid = pending_payment(app)
    send(app, event("payment_intent.succeeded", {"id": "pi_test_1"}, "evt_r1"))
    send(
        app,
        event(
            "charge.refunded",
            {"id": "ch", "payment_intent": "pi_test_1", "amount_refunded": 1234},
            "evt_r2",
        ),
    )
    get_runner(app).drain()
    with app.app_context():
        kinds = [d.kind for d in db.session.query(Delivery).filter_by(channel="email")]
        assert kinds == ["payment_receipt", "payment_refunded"]
        assert {d.state for d in db.session.query(Delivery).filter_by(channel="email")} == {"sent"}
    assert status_of(app, pid) == "refunded"
    subjects = sorted(
        line
        for f in (Path(app.instance_path) / "mail").glob("*.eml")
        for line in f.read_text().splitlines()
        if line.startswith("Subject:")
    )
    assert subjects == [
        "Subject: Receipt: Lamp, 12.34 USD",
        "Subject: Refund of 12.34 USD for Lamp",
    ]
