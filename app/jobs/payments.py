"""Payments left pending by an unknown outcome: the reconciliation task looks each one up.

`job.payment_reconcile` is queued (with a delay) whenever a provider call went
unanswered; it resolves the payment or queues itself again, later.
"""

from __future__ import annotations

from app.payments import get_payment_service
from app.services.outbox import Message


def reconcile_payment(message: Message, *, retry_in: float | None) -> None:
    """Look up one pending payment at its provider and apply what it says."""
    get_payment_service().reconcile(int(message.payload["payment_id"]))
