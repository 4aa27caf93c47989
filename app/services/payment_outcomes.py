"""What a provider's answer (or its silence) does to the payment row, and the lease that
keeps two processes from working on one payment at once.

Each function works inside the caller's unit of work (the service opens one per step,
between provider calls, never around them) and takes the payment's row lock first, so
our answers and Stripe's webhooks are applied one after the other.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.core.events import Actor
from app.errors import NotFound
from app.models.base import utcnow
from app.models.payment import Payment, PaymentTransaction
from app.services.outbox import add_message
from app.services.payment_events import lock_intent, replay_stored
from app.services.payment_providers import Declined, PaymentError, ProviderResult
from app.services.payment_records import advance, decline_words, sync_ledger

LEASE = timedelta(seconds=60)
RECONCILE_DELAYS = (10, 60, 300, 1800, 7200)  # seconds before each reconciliation try


def record_result(
    session: Session, payment_id: int, provider: str, result: ProviderResult, actor: Actor
) -> str:
    """Record the provider's answer, then the webhooks that came before we knew the
    intent was ours; returns the payment's status."""
    lock_intent(session, result.reference)  # before the row: the webhooks' order
    payment = locked(session, payment_id)
    payment.provider, payment.provider_ref = provider, result.reference
    payment.charge_ref = result.charge_ref or payment.charge_ref
    payment.client_secret = result.client_secret or payment.client_secret
    payment.approval_url = result.approval_url or payment.approval_url
    if result.status == "failed":
        payment.decline_code = result.decline_code
        payment.failure_message = decline_words(result.decline_code)
    advance(session, payment, result.status, actor)
    replay_stored(session, payment)
    sync_ledger(session, payment, retry_at=None)
    if payment.status != "pending":
        payment.lease_until = None
    return payment.status


def record_failure(
    session: Session, payment_id: int, provider: str | None, exc: PaymentError, actor: Actor
) -> None:
    """The payment failed: declined (its code in plain words), or no provider could take it."""
    payment = locked(session, payment_id)
    payment.provider = payment.provider or provider
    if isinstance(exc, Declined):
        payment.decline_code = exc.code
        payment.failure_message = decline_words(exc.code)
    else:
        payment.failure_message = exc.message[:300]
    advance(session, payment, "failed", actor, error=type(exc).__name__)
    payment.lease_until = None
    sync_ledger(session, payment, retry_at=None)


def record_unknown(session: Session, payment_id: int, provider: str) -> None:
    """Sent, no answer: stays pending with this provider, and a job looks it up later
    (each time later than the last)."""
    payment = locked(session, payment_id)
    payment.provider = provider
    payment.lease_until = None
    lookups = session.scalar(
        select(func.count())
        .select_from(PaymentTransaction)
        .where(PaymentTransaction.payment_id == payment_id, PaymentTransaction.kind == "lookup")
    )
    delay = RECONCILE_DELAYS[min(lookups or 0, len(RECONCILE_DELAYS) - 1)]
    due = utcnow() + timedelta(seconds=delay)
    message = add_message(session, "job.payment_reconcile", {"payment_id": payment_id})
    message.available_at = due
    sync_ledger(session, payment, retry_at=due)


def locked(session: Session, payment_id: int) -> Payment:
    """The payment's row, locked until the unit of work ends."""
    payment = session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
    if payment is None:
        raise NotFound("No such payment.")
    return payment


def claim(session: Session, payment_id: int) -> bool:
    """Take the lease on a payment; False while another process holds it."""
    now = utcnow()
    claimed = session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .where(or_(Payment.lease_until.is_(None), Payment.lease_until < now))
        .values(lease_until=now + LEASE)
    )
    return bool(getattr(claimed, "rowcount", 0))


def release(session: Session, payment_id: int) -> None:
    """Give the lease back without changing the payment (a refund that did not go through)."""
    session.execute(update(Payment).where(Payment.id == payment_id).values(lease_until=None))
