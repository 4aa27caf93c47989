"""Where payments stand: the one state machine every answer goes through, the ledger rows
that follow it, and the reads pages and the API make.

A payment's status only moves forward (pending -> requires_action -> failed ->
succeeded -> partially_refunded -> refunded), so an answer or an event that arrives
late never undoes a later state; each move is counted, and the moves that matter
are published (payment.succeeded, payment.failed, payment.refunded).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.events import Actor, EventType, publish
from app.core.listing import ListQuery, Page, Seek
from app.core.metrics import PAYMENTS
from app.errors import NotFound
from app.models.base import MAX_ID, utcnow
from app.models.messaging import Delivery
from app.models.payment import Payment, PaymentTransaction
from app.repositories.payments import PaymentRepository

RANK = {
    "pending": 0,
    "requires_action": 1,
    "failed": 2,
    "succeeded": 3,
    "partially_refunded": 4,
    "refunded": 5,
}
DECLINES = {
    "card_declined": "The card was declined.",
    "generic_decline": "The card was declined.",
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
    "incorrect_cvc": "The card's security code is incorrect.",
    "lost_card": "The card was reported lost.",
    "stolen_card": "The card was reported stolen.",
    "processing_error": "The card could not be processed; try again.",
    "payment_intent_authentication_failure": "The card's 3-D Secure check was not completed.",
    "instrument_declined": "PayPal declined the payment method.",
}


def decline_words(code: str | None) -> str:
    """A decline code in plain words for the buyer."""
    return DECLINES.get(code or "", "The payment was declined.")


def minor_units(price: Decimal) -> int:
    return int((price * 100).to_integral_value())


@dataclass(frozen=True)
class Record:
    """A payment as pages and the API show it."""

    payment: Payment
    transactions: list[PaymentTransaction]


# --- the state machine -------------------------------------------------------------------

EVENT_OF = {
    "succeeded": EventType.PAYMENT_SUCCEEDED,
    "failed": EventType.PAYMENT_FAILED,
}


def advance(session: Session, payment: Payment, status: str, actor: Actor, **extra: Any) -> bool:
    """Move a payment forward to `status`; a status earlier in its life (an event arriving
    late) changes nothing. Returns whether it moved."""
    if RANK[status] <= RANK[payment.status]:
        return False
    payment.status = status
    session.flush()
    PAYMENTS.labels(provider=payment.provider or "none", status=status).inc()
    kind = EVENT_OF.get(status)
    if kind is not None:
        _publish(session, kind, payment, actor, **extra)
    return True


def apply_refunded(session: Session, payment: Payment, total: int, actor: Actor) -> bool:
    """Record that `total` (minor units) has now been refunded; only ever grows."""
    total = min(total, payment.amount)
    if total <= payment.refunded_amount:
        return False
    refunded_now = total - payment.refunded_amount
    payment.refunded_amount = total
    status = "refunded" if total >= payment.amount else "partially_refunded"
    payment.status = status
    session.flush()
    PAYMENTS.labels(provider=payment.provider or "none", status=status).inc()
    _publish(session, EventType.PAYMENT_REFUNDED, payment, actor, refunded=refunded_now)
    return True


def _publish(
    session: Session, kind: EventType, payment: Payment, actor: Actor, **extra: Any
) -> None:
    publish(
        session,
        kind,
        subject=("payment", payment.id),
        actor=actor,
        amount=payment.amount,
        currency=payment.currency,
        provider=payment.provider,
        status=payment.status,
        **extra,
    )


def sync_ledger(session: Session, payment: Payment, *, retry_at: datetime | None) -> None:
    """Keep the payment's entry in the delivery ledger in step with it."""
    delivery = session.get(Delivery, payment.delivery_id) if payment.delivery_id else None
    if delivery is None:
        return
    delivery.recipient = payment.provider or delivery.recipient
    delivery.kind = f"payment.{payment.provider or 'none'}"
    delivery.attempts = len(
        list(
            session.scalars(
                select(PaymentTransaction.id).where(
                    PaymentTransaction.payment_id == payment.id,
                    PaymentTransaction.kind.in_(("intent", "charge", "lookup")),
                )
            )
        )
    )
    state = {
        "succeeded": "sent",
        "failed": "failed",
        "refunded": "sent",
        "partially_refunded": "sent",
    }.get(payment.status, "pending")
    if retry_at is not None:
        state = "retrying"
    delivery.state, delivery.next_retry_at = state, retry_at
    delivery.last_error = payment.failure_message if state == "failed" else None
    if state == "sent":
        delivery.sent_at = delivery.sent_at or utcnow()
    session.flush()


def iter_pending(session: Session) -> Iterator[int]:
    """Ids of payments still pending (what `flask payments reconcile` walks)."""
    yield from session.scalars(select(Payment.id).where(Payment.status == "pending"))


# --- lists and pages ---------------------------------------------------------------------


def visible_payment(session: Session, payment_id: int, *, viewer_id: int, admin: bool) -> Record:
    """A payment and its ledger, for its buyer or an admin; anyone else gets NotFound."""
    found = session.get(Payment, payment_id) if 1 <= payment_id <= MAX_ID else None
    if found is None or not (admin or found.user_id == viewer_id):
        raise NotFound("No such payment.")
    transactions = list(
        session.scalars(
            select(PaymentTransaction)
            .where(PaymentTransaction.payment_id == found.id)
            .order_by(PaymentTransaction.id)
        )
    )
    return Record(found, transactions)


def list_payments(
    session: Session, query: ListQuery, *, viewer_id: int, admin: bool, seek: Seek | None = None
) -> Page[Payment]:
    """One page of payments: a buyer's own, or everyone's for admins."""
    if not admin:
        query = replace(query, filters={**query.filters, "user_id": viewer_id})
    return PaymentRepository(session).list(query, seek=seek)


def payment_of_delivery(session: Session, delivery_ids: list[int]) -> dict[int, int]:
    """The payment behind each payment row of the delivery ledger."""
    if not delivery_ids:
        return {}
    rows = session.execute(
        select(Payment.delivery_id, Payment.id).where(Payment.delivery_id.in_(delivery_ids))
    )
    return {delivery_id: payment_id for delivery_id, payment_id in rows if delivery_id}


def oldest_unknown_age(session: Session, *, now: datetime | None = None) -> float:
    """Seconds since the oldest payment still pending (outcome not yet known) was made."""
    oldest = session.scalar(select(func.min(Payment.created_at)).where(Payment.status == "pending"))
    if oldest is None:
        return 0.0
    return max(0.0, ((now or utcnow()) - oldest).total_seconds())
