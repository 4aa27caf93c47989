"""Refunds (admins only): all or part of what was captured, never more than is left of it,
each one provider call written to the payment's ledger.

The key derives from the payment and the refund's number (`payment-42-refund-2`), so a
double submit or a retry after a crash gives back once; the payment's lease keeps two
admins' refunds from racing past what is left.
"""

from __future__ import annotations

from decimal import Decimal

from app.core.events import Actor
from app.errors import Conflict, ValidationFailed
from app.models.payment import Payment
from app.services.payment_calls import ProviderCalls
from app.services.payment_outcomes import claim, locked, release
from app.services.payment_providers import PaymentError, ProviderResult
from app.services.payment_records import apply_refunded

REFUNDABLE = ("succeeded", "partially_refunded")


def refund_amount(payment: Payment, amount: int | None) -> int:
    """The amount to give back (None: all that is left), or why it cannot be."""
    if payment.status not in REFUNDABLE:
        raise Conflict(f"Only a succeeded payment can be refunded; this one is {payment.status}.")
    remaining = payment.amount - payment.refunded_amount
    amount = remaining if amount is None else amount
    if amount <= 0 or amount > remaining:
        limit = f"{Decimal(remaining) / 100:.2f} {payment.currency.upper()}"
        raise ValidationFailed(
            fields={"amount": f"Refund between 0.01 and {limit} (what is left of the capture)."}
        )
    return amount


def refund(calls: ProviderCalls, payment: Payment, amount: int | None, *, actor: Actor) -> None:
    """Give back `amount` (minor units; None: all that is left) of a captured payment."""
    amount = refund_amount(payment, amount)
    with calls.transaction() as session:
        if not claim(session, payment.id):
            raise Conflict("This payment is being changed right now; try again in a moment.")
    provider = calls.factory.get(payment.provider or "")
    key = f"payment-{payment.id}-refund-{payment.refund_count + 1}"
    captured = ProviderResult(
        status="succeeded", reference=payment.provider_ref or "", charge_ref=payment.charge_ref
    )
    try:
        done = calls.once(
            payment.id,
            provider.name,
            "refund",
            lambda: provider.refund(captured, amount, payment.currency, idempotency_key=key),
            key=key,
            amount=amount,
        )
    except PaymentError as exc:
        with calls.transaction() as session:
            release(session, payment.id)
        raise Conflict(f"The refund did not go through: {exc.message}") from exc
    with calls.transaction() as session:
        found = locked(session, payment.id)
        found.refund_count += 1
        apply_refunded(session, found, found.refunded_amount + done.amount, actor)
        found.lease_until = None
