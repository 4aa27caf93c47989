"""What providers tell us (Stripe webhooks in) and what payment events cause (emails out).

An incoming event is verified on the raw body (signature, 5 minutes of tolerance either
way: the Stripe library refuses stale timestamps but not future ones), stored raw with a
processed flag, and applied once: its id is unique, so ten concurrent copies change the
payment once and the other nine answer "duplicate". Payments only move forward
(app/services/payment_records.py's `advance`), so an event that arrives late changes
nothing. An event about a PaymentIntent no payment is linked to yet (Stripe can speak
before our own call has its answer) stays stored unprocessed; `replay_stored` applies
such events, in the order they arrived, once the payment learns its reference.
Emails and outgoing webhooks follow through the outbox, never inside the request.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.events import SYSTEM, Event, EventType
from app.errors import BadRequest
from app.models.base import utcnow
from app.models.payment import Payment, PaymentEvent
from app.models.user import User
from app.services.outbox import queue_email
from app.services.payment_records import advance, apply_refunded, decline_words

TOLERANCE = 300  # seconds a signed timestamp may differ from our clock, either way
HANDLED = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "charge.refunded",
)


class BadSignature(BadRequest):
    code = "bad_signature"


def verify(raw: bytes, header: str, secret: str, *, now: float | None = None) -> dict[str, Any]:
    """The event, if `header` signs exactly these bytes with `secret` within the tolerance."""
    now = time.time() if now is None else now
    try:
        text = raw.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, header, secret, tolerance=TOLERANCE)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        raise BadSignature("The Stripe-Signature header does not match this body.") from None
    stamps = [p[2:] for p in header.split(",") if p.startswith("t=")]
    if not stamps or not stamps[0].isdigit() or int(stamps[0]) > now + TOLERANCE:
        raise BadSignature("The signature's timestamp is in the future.")
    try:
        event = json.loads(text)
    except ValueError:
        raise BadSignature("The body is not JSON.") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise BadSignature("The body is not a Stripe event.")
    return event


@dataclass(frozen=True)
class Received:
    """What became of an incoming event: stored and applied, or a duplicate."""

    duplicate: bool
    applied: bool


def receive(session: Session, event: dict[str, Any], raw: bytes) -> Received:
    """Store an event once (by its id) and apply it to its payment."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = str(event.get("type", ""))[:80]
    ref = obj.get("payment_intent") if kind.startswith("charge.") else obj.get("id")
    row = PaymentEvent(
        provider="stripe",
        event_id=str(event["id"])[:100],
        type=kind,
        object_ref=str(ref)[:100] if ref else None,
        payload=event,
        raw=raw.decode("utf-8"),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return Received(duplicate=True, applied=False)
    return Received(duplicate=False, applied=apply(session, row))


def apply(session: Session, row: PaymentEvent) -> bool:
    """Apply a stored event to its payment; unknown types are marked processed and ignored.
    An event about a payment we do not know yet stays unprocessed (see `replay_stored`)."""
    if row.type not in HANDLED:
        row.processed, row.processed_at = True, utcnow()
        return False
    lock_intent(session, row.object_ref)
    payment = session.scalar(
        select(Payment)
        .where(Payment.provider == "stripe", Payment.provider_ref == row.object_ref)
        .with_for_update()
    )
    if payment is None:
        return False
    return _apply_row(session, payment, row)


def lock_intent(session: Session, reference: str | None) -> None:
    """Until the unit of work ends, be the only one linking a payment to this intent or
    applying an event about it. Without this, on PostgreSQL, an event could look for its
    payment just before the link commits and be stored unprocessed just after the
    payment's replay looked for it. Take it before the payment's row lock (one order
    everywhere, no deadlock). SQLite runs one writer at a time: nothing to do there."""
    if reference and session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"pi:{reference}"))))


def replay_stored(session: Session, payment: Payment) -> int:
    """Apply, oldest first, the stored events about this payment's intent that arrived
    before it was linked to it; returns how many. The caller holds `lock_intent` for the
    intent and the payment's row."""
    if payment.provider != "stripe" or not payment.provider_ref:
        return 0
    waiting = session.scalars(
        select(PaymentEvent)
        .where(
            PaymentEvent.provider == "stripe",
            PaymentEvent.processed.is_(False),
            PaymentEvent.object_ref == payment.provider_ref,
            PaymentEvent.type.in_(HANDLED),
        )
        .order_by(PaymentEvent.received_at, PaymentEvent.id)
    ).all()
    for row in waiting:
        _apply_row(session, payment, row)
    return len(waiting)


def _apply_row(session: Session, payment: Payment, row: PaymentEvent) -> bool:
    moved = _apply_to(session, payment, row.type, row.payload["data"]["object"])
    row.processed, row.processed_at = True, utcnow()
    session.flush()
    return moved


def _apply_to(session: Session, payment: Payment, kind: str, obj: dict[str, Any]) -> bool:
    if kind == "charge.refunded":
        return apply_refunded(session, payment, int(obj.get("amount_refunded") or 0), SYSTEM)
    if kind == "payment_intent.succeeded":
        charge = obj.get("latest_charge")
        payment.charge_ref = payment.charge_ref or (charge if isinstance(charge, str) else None)
        return advance(session, payment, "succeeded", SYSTEM, via="webhook")
    if kind == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code")
        if payment.status in ("pending", "requires_action"):
            payment.decline_code, payment.failure_message = code, decline_words(code)
        return advance(session, payment, "failed", SYSTEM, via="webhook")
    return advance(session, payment, "requires_action", SYSTEM, via="webhook")


# --- what payment events owe: receipts and refund notices ---------------------------------


class PaymentMailHandler:
    """A receipt when a payment succeeds, a notice when money is refunded."""

    name = "payment-mail"
    handles = frozenset({EventType.PAYMENT_SUCCEEDED, EventType.PAYMENT_REFUNDED})

    def handle(self, event: Event, session: Session | None) -> None:
        if session is None:
            raise RuntimeError(f"{event.type} was published outside a transaction: no email")
        payment = session.get(Payment, int(event.subject_id or 0))
        user = session.get(User, payment.user_id) if payment else None
        if payment is None or user is None:
            return
        refund = event.type == EventType.PAYMENT_REFUNDED
        template = "payment_refunded" if refund else "payment_receipt"
        queue_email(
            session,
            template,
            to=user.email,
            summary=f"{'Refund' if refund else 'Receipt'}: {payment.item_name}"[:200],
            user_id=user.id,
            payment_id=payment.id,
            item_name=payment.item_name,
            amount=_money(payment.amount, payment.currency),
            refunded=_money(int(event.payload.get("refunded") or 0), payment.currency),
            refunded_total=_money(payment.refunded_amount, payment.currency),
            provider=payment.provider,
            occurred_at=event.occurred_at.isoformat(),
        )


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency.upper()}"
