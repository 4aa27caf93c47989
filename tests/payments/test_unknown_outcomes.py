"""Outcomes we never heard: an intent whose creation went unanswered is created again with
the same key by the reconciler (never elsewhere); the API's PayPal path; webhook timing."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.jobs.runner import get_runner
from app.models.base import utcnow
from app.models.messaging import OutboxMessage
from app.models.payment import Payment
from tests.payments.conftest import item_id
from tests.payments.fake_paypal import FakePayPal
from tests.payments.proxy import RecordingProxy


@pytest.fixture
def stripe_base(stripe_proxy: RecordingProxy) -> str:
    return stripe_proxy.url


def test_an_unanswered_intent_is_created_again_with_its_key_by_the_job(
    app: Flask,
    api: FlaskClient,
    tokens: dict[str, dict[str, str]],
    stripe_proxy: RecordingProxy,
    fake_paypal: FakePayPal,
) -> None:
    stripe_proxy.drop = ("/v1/payment_intents",)
    body = {"item_id": item_id(app), "payment_method": "pm_card_visa"}
    answer = api.post("/api/v1/payments", json=body, headers=tokens["user"])
    assert answer.status_code == 201 and answer.json["status"] == "pending"
    assert answer.json["provider"] == "stripe" and fake_paypal.requests == []
    stripe_proxy.drop = ()
    with app.app_context(), db.transaction() as session:  # the job's delay has passed
        for message in session.query(OutboxMessage).filter_by(kind="job.payment_reconcile"):
            message.available_at = utcnow()
    get_runner(app).drain()
    with app.app_context():
        assert db.session.get(Payment, answer.json["id"]).status == "succeeded"
    keys = {
        p.headers["Idempotency-Key"]
        for p in stripe_proxy.posts("/v1/payment_intents")
        if not p.path.endswith("/confirm")
    }
    assert keys == {f"payment-{answer.json['id']}-intent"}
    assert len(stripe_proxy.posts("/confirm")) == 1


def test_the_api_pays_with_paypal_when_no_card_is_given(
    app: Flask, api: FlaskClient, tokens: dict[str, dict[str, str]], fake_paypal: FakePayPal
) -> None:
    answer = api.post("/api/v1/payments", json={"item_id": item_id(app)}, headers=tokens["user"])
    assert answer.status_code == 201
    assert (answer.json["status"], answer.json["provider"]) == ("requires_action", "paypal")
    assert answer.json["approval_url"].startswith(f"{fake_paypal.url}/checkoutnow?token=")


def test_stripe_webhooks_answer_within_two_seconds(app: Flask) -> None:
    from tests.payments.test_stripe_webhooks import event, send

    started = time.perf_counter()
    assert (
        send(app, event("payment_intent.succeeded", {"id": "pi_x"}, "evt_fast")).status_code == 200
    )
    assert time.perf_counter() - started < 2
