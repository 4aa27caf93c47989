"""Data access for payments: listed as PAYMENT_LISTING declares, scoped to an owner on demand."""

from __future__ import annotations

from app.models.payment import PAYMENT_LISTING, Payment
from app.repositories.base import BaseRepository


class PaymentRepository(BaseRepository[Payment]):
    """Payments, newest first; the `user_id` filter (never offered to clients) scopes a
    list to one buyer."""

    model = Payment
    listing = PAYMENT_LISTING


PaymentRepository.filterable = {**PaymentRepository.filterable, "user_id": Payment.user_id}
