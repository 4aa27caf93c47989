"""Stripe events that arrive before the payment knows its PaymentIntent (our call's answer
was lost, or is still on its way) are stored unprocessed, and applied in the order they
arrived as soon as the payment is linked to the intent."""

from __future__ import annotations

from flask import Flask

from app.core.events import Actor
from app.extensions import db
from app.models.audit import AuditLog
from app.models.payment import Payment, PaymentEvent
from app.services.payment import PaymentProviderFactory, PaymentService
from app.services.payment_providers import ChargeRequest, OutcomeUnknown, ProviderResult
from tests.payments.conftest import item_id
from tests.payments.memory_provider import MemoryProvider
from tests.payments.test_service import URLS, _user_id
from tests.payments.test_stripe_webhooks import event, send


class LostAnswers(MemoryProvider):
    """Makes the intent every time, but the answers to the first two calls are lost."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 2

    def create_intent(self, request: ChargeRequest, *, idempotency_key: str) -> ProviderResult:
        made = super().create_intent(request, idempotency_key=idempotency_key)
        if self.lost:
            self.lost -= 1
            raise OutcomeUnknown("Stripe did not answer in time.")
        return made


def unlinked_payment(app: Flask, provider: LostAnswers) -> tuple[PaymentService, int]:
    """A payment whose intent was made at the provider but whose answer we never got."""
    service = PaymentService(
        PaymentProviderFactory().register(provider), db.transaction, currency="usd"
    )
    with app.app_context():
        user = _user_id(app)
        payment, _ = service.pay(
            user,
            item_id(app),
            payment_method="pm_card_visa",
            idempotency_key="replay",
            urls=URLS,
            actor=Actor(user_id=user),
        )
    assert (payment.status, payment.provider, payment.provider_ref) == ("pending", "stripe", None)
    return service, payment.id


def test_events_before_the_link_are_kept_then_applied_in_order(app: Flask) -> None:
    provider = LostAnswers()
    service, pid = unlinked_payment(app, provider)
    early = [
        event(
            "payment_intent.succeeded",
            {"id": "pi_memory_1", "latest_charge": "ch_early"},
            "evt_early_1",
        ),
        event(
            "charge.refunded",
            {"id": "ch_early", "payment_intent": "pi_memory_1", "amount_refunded": 234},
            "evt_early_2",
        ),
        event("payment_intent.succeeded", {"id": "pi_someone_else"}, "evt_other"),
    ]
    for body in early:
        answer = send(app, body)
        assert (answer.status_code, answer.json["applied"]) == (200, False)
    with app.app_context():
        waiting = db.session.query(PaymentEvent).filter_by(processed=False).count()
        assert waiting == 3 and db.session.get(Payment, pid).status == "pending"

    with app.app_context():
        assert service.reconcile(pid) == "partially_refunded"  # the intent's answer, at last
        payment = db.session.get(Payment, pid)
        assert (payment.provider_ref, payment.charge_ref, payment.refunded_amount) == (
            "pi_memory_1",
            "ch_early",
            234,
        )
        moves = db.session.query(AuditLog.event_type).filter(AuditLog.event_type.like("payment.%"))
        assert [m for (m,) in moves.order_by(AuditLog.id)] == [
            "payment.succeeded",
            "payment.refunded",
        ]
        left = db.session.query(PaymentEvent.event_id).filter_by(processed=False)
        assert [e for (e,) in left] == ["evt_other"]  # about another intent: still waiting
    assert not any(key.endswith("-confirm") for key in provider.by_key)  # Stripe said paid


def test_an_event_after_the_link_applies_at_once(app: Flask) -> None:
    provider = LostAnswers()
    service, pid = unlinked_payment(app, provider)
    with app.app_context():
        assert service.reconcile(pid) == "succeeded"  # linked, then confirmed by us
    answer = send(
        app,
        event(
            "charge.refunded",
            {"id": "ch_1", "payment_intent": "pi_memory_1", "amount_refunded": 1234},
            "evt_late",
        ),
    )
    assert answer.json["applied"] is True
    with app.app_context():
        assert db.session.get(Payment, pid).status == "refunded"
