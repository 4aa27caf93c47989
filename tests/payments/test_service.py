"""PaymentService with the real `stripe` client on localstripe and PayPal's SDK on the fake:
the outcomes of item 3 and the fallback rules of item 4."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from app.core.events import Actor
from app.extensions import db
from app.models.messaging import Delivery, OutboxMessage
from app.models.payment import Payment, PaymentTransaction
from app.payments import get_payment_service
from app.services.payment import Urls
from tests.payments.conftest import closed_port_url, item_id
from tests.payments.fake_paypal import FakePayPal
from tests.payments.proxy import RecordingProxy

URLS = Urls(
    return_url=lambda pid: f"http://localhost/payments/{pid}/paypal-return",
    cancel_url=lambda pid: f"http://localhost/payments/{pid}",
)


def pay(app: Flask, method: str | None, *, key: str | None = None, item: str = "Lamp") -> Payment:
    with app.app_context():
        user_id = _user_id(app)
        payment, _ = get_payment_service().pay(
            user_id,
            item_id(app, item),
            payment_method=method,
            idempotency_key=key,
            urls=URLS,
            actor=Actor(user_id=user_id),
        )
        return payment


def _user_id(app: Flask) -> int:
    from app.models.user import User

    return int(db.session.query(User.id).filter(User.email == "user@example.com").scalar())


def ledger(app: Flask, payment_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.query(PaymentTransaction).filter_by(payment_id=payment_id)
        return [(t.kind, t.outcome) for t in rows.order_by(PaymentTransaction.id)]


def stripe_card(base: str, number: str) -> str:
    """A PaymentMethod for a test card number, made as Stripe.js would make it."""
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": base})
    card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    return str(client.v1.payment_methods.create(params={"type": "card", "card": card}).id)


def test_a_visa_card_pays(app: Flask, fake_paypal: FakePayPal) -> None:
    payment = pay(app, "pm_card_visa")
    assert (payment.status, payment.provider, payment.amount, payment.currency) == (
        "succeeded",
        "stripe",
        1234,
        "usd",
    )
    assert payment.provider_ref and payment.provider_ref.startswith("pi_")
    assert ledger(app, payment.id) == [("intent", "succeeded"), ("charge", "succeeded")]
    assert fake_paypal.requests == []
    with app.app_context():
        delivery = db.session.get(Delivery, payment.delivery_id)
        assert (delivery.channel, delivery.state, delivery.recipient) == (
            "payment",
            "sent",
            "stripe",
        )


def test_a_card_declined_at_charge_fails_with_its_code_and_no_fallback(
    app: Flask, fake_paypal: FakePayPal
) -> None:
    payment = pay(app, "pm_card_chargeCustomerFail")
    assert (payment.status, payment.decline_code) == ("failed", "card_declined")
    assert payment.failure_message == "The card was declined."
    assert ledger(app, payment.id) == [("intent", "succeeded"), ("charge", "declined")]
    assert fake_paypal.requests == []


def test_a_card_declined_at_attach_is_refused_before_any_charge(
    app: Flask, localstripe: str, fake_paypal: FakePayPal
) -> None:
    payment = pay(app, stripe_card(localstripe, "4000000000000002"))
    assert (payment.status, payment.decline_code, payment.provider_ref) == (
        "failed",
        "card_declined",
        None,
    )
    assert ledger(app, payment.id) == [("intent", "declined")]
    assert fake_paypal.requests == []


def test_3d_secure_asks_the_buyer_then_succeeds(app: Flask, localstripe: str) -> None:
    payment = pay(app, stripe_card(localstripe, "4000002500003155"))
    assert payment.status == "requires_action"
    assert payment.client_secret and payment.client_secret.startswith(payment.provider_ref or "-")
    # what Stripe.js does when the buyer completes the bank's check
    answer = requests.post(
        f"{localstripe}/v1/payment_intents/{payment.provider_ref}/_authenticate?success=true",
        json={"key": "pk_test_x", "client_secret": payment.client_secret},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    with app.app_context():
        refreshed = get_payment_service().refresh(payment.id, actor=Actor())
    assert refreshed.status == "succeeded"
    assert ledger(app, payment.id)[-1] == ("lookup", "succeeded")


def test_free_items_and_missing_items_are_refused(app: Flask) -> None:
    from app.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as free:
        pay(app, "pm_card_visa", item="Free sample")
    assert "free" in free.value.fields["item_id"]


@pytest.mark.parametrize("stripe_base", [closed_port_url()])
def test_stripe_unreachable_continues_with_paypal_and_captures_once(
    app: Flask, fake_paypal: FakePayPal
) -> None:
    payment = pay(app, "pm_card_visa")
    assert (payment.status, payment.provider) == ("requires_action", "paypal")
    assert payment.approval_url and payment.approval_url.startswith(fake_paypal.url)
    assert ledger(app, payment.id) == [("intent", "error"), ("intent", "requires_action")]
    fake_paypal.approve(payment.provider_ref or "")
    with app.app_context():
        service = get_payment_service()
        done = service.capture_approved(payment.id, actor=Actor())
        again = service.capture_approved(payment.id, actor=Actor())
    assert (done.status, again.status) == ("succeeded", "succeeded")
    assert fake_paypal.captures == 1
    keys = [r.headers.get("Paypal-Request-Id") for r in fake_paypal.posts("/v2/checkout/orders")]
    assert keys == [f"payment-{payment.id}-intent", f"payment-{payment.id}-confirm"]


@pytest.fixture
def dropping(stripe_proxy: RecordingProxy) -> RecordingProxy:
    return stripe_proxy


@pytest.fixture
def stripe_base(stripe_proxy: RecordingProxy) -> str:  # every test here goes through the proxy
    return stripe_proxy.url


def test_a_confirm_whose_answer_is_lost_stays_pending_then_reconciles(
    app: Flask, stripe_proxy: RecordingProxy, fake_paypal: FakePayPal
) -> None:
    stripe_proxy.drop = ("/confirm",)
    payment = pay(app, "pm_card_visa")
    assert (payment.status, payment.provider) == ("pending", "stripe")
    assert fake_paypal.requests == []  # never another provider once an intent exists
    confirms = stripe_proxy.posts("/confirm")
    assert len(confirms) == 2  # retried once...
    keys = {c.headers.get("Idempotency-Key") for c in confirms}
    assert keys == {f"payment-{payment.id}-confirm"}  # ...with the same key
    assert ledger(app, payment.id) == [
        ("intent", "succeeded"),
        ("charge", "unknown"),
        ("charge", "unknown"),
    ]
    with app.app_context():
        job = db.session.query(OutboxMessage).filter_by(kind="job.payment_reconcile").one()
        assert job.payload == {"payment_id": payment.id}
        assert db.session.get(Delivery, payment.delivery_id).state == "retrying"
    stripe_proxy.drop = ()
    with app.app_context():
        assert get_payment_service().reconcile(payment.id) == "succeeded"
    assert ledger(app, payment.id)[-1] == ("lookup", "succeeded")
    assert len(stripe_proxy.posts("/confirm")) == 2  # the lookup charged nothing more


def test_every_stripe_post_carries_its_idempotency_key(
    app: Flask, stripe_proxy: RecordingProxy
) -> None:
    payment = pay(app, "pm_card_visa")
    posts = stripe_proxy.posts("/v1/")
    assert posts and all(p.headers.get("Idempotency-Key") for p in posts)
    assert {p.headers["Idempotency-Key"] for p in stripe_proxy.posts("/v1/payment_intents")} == {
        f"payment-{payment.id}-intent",
        f"payment-{payment.id}-confirm",
    }


def test_concurrent_submits_with_one_key_charge_once(
    app: Flask, stripe_proxy: RecordingProxy
) -> None:
    results: list[Any] = []

    def submit() -> None:
        try:
            results.append(pay(app, "pm_card_visa", key="checkout-1").id)
        except Exception as exc:  # collected: the assertion below names it
            results.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1, results
    assert len(stripe_proxy.posts("/confirm")) == 1
    with app.app_context():
        assert db.session.query(Payment).count() == 1


@pytest.mark.parametrize("stripe_base", [closed_port_url()])
def test_the_breaker_opens_and_the_chain_skips_stripe_for_a_while(
    app: Flask, fake_paypal: FakePayPal
) -> None:
    for _ in range(3):
        pay(app, "pm_card_visa")
    with app.app_context():
        assert get_payment_service().factory.breaker("stripe").state == "open"
    skipped = pay(app, "pm_card_visa")
    assert skipped.provider == "paypal"
    with app.app_context():
        first = db.session.query(PaymentTransaction).filter_by(payment_id=skipped.id).first()
        assert (first.provider, first.message) == ("stripe", "stripe is failing; skipped for now.")
        assert first.duration_ms < 50  # no connection was even tried
