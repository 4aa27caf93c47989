"""Every call to a provider about a payment goes through here: through the provider's
circuit breaker, timed, and written to the payment's ledger (`payment_transaction`)
whatever its outcome, so a payment's page shows each call and how it ended.

Calls run outside any database transaction (a slow provider holds no connection); each
ledger row is written in a short unit of its own once the answer, or its absence, is in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

from sqlalchemy.orm import Session

from app.core.metrics import PAYMENT_PROVIDER_SECONDS, PAYMENT_UNKNOWN_OUTCOMES
from app.models.payment import PaymentTransaction, TransactionKind
from app.services.payment_chain import PaymentProviderFactory
from app.services.payment_providers import (
    Declined,
    OutcomeUnknown,
    PaymentError,
    PaymentProvider,
    ProviderResult,
)

T = TypeVar("T")
Transaction = Callable[[], AbstractContextManager[Session]]
OUTCOME_OF_STATUS = {"failed": "declined", "requires_action": "requires_action"}


class ProviderCalls:
    """Provider calls, each through its breaker and written to the payment's ledger."""

    def __init__(self, factory: PaymentProviderFactory, transaction: Transaction) -> None:
        self.factory = factory
        self.transaction = transaction

    def twice(
        self,
        payment_id: int,
        provider: PaymentProvider,
        kind: TransactionKind,
        call: Callable[[], ProviderResult],
        *,
        key: str,
        amount: int | None,
    ) -> ProviderResult:
        """A call, and once more with the same key if its outcome was unknown."""
        try:
            return self.once(payment_id, provider.name, kind, call, key=key, amount=amount)
        except OutcomeUnknown:
            return self.once(payment_id, provider.name, kind, call, key=key, amount=amount)

    def once(
        self,
        payment_id: int,
        provider: str,
        kind: TransactionKind,
        call: Callable[[], T],
        *,
        key: str | None = None,
        amount: int | None = None,
    ) -> T:
        """One provider call, through the breaker, timed and written to the ledger."""
        entry = PaymentTransaction(
            payment_id=payment_id, kind=kind, provider=provider, amount=amount, idempotency_key=key
        )
        started = time.perf_counter()
        try:
            result = self.factory.call(provider, call)
        except PaymentError as exc:
            entry.outcome = _outcome_of(exc)
            entry.error_class, entry.message = type(exc).__name__, exc.message[:300]
            entry.decline_code = exc.code if isinstance(exc, Declined) else None
            if isinstance(exc, OutcomeUnknown):
                PAYMENT_UNKNOWN_OUTCOMES.labels(provider=provider).inc()
            self._write(entry, started)
            raise
        entry.outcome = OUTCOME_OF_STATUS.get(getattr(result, "status", ""), "succeeded")
        entry.reference = getattr(result, "reference", None)
        entry.decline_code = getattr(result, "decline_code", None)
        self._write(entry, started)
        return result

    def _write(self, entry: PaymentTransaction, started: float) -> None:
        seconds = time.perf_counter() - started
        PAYMENT_PROVIDER_SECONDS.labels(provider=entry.provider, operation=entry.kind).observe(
            seconds
        )
        entry.duration_ms = round(seconds * 1000)
        with self.transaction() as session:
            session.add(entry)


def _outcome_of(exc: PaymentError) -> str:
    if isinstance(exc, Declined):
        return "declined"
    if isinstance(exc, OutcomeUnknown):
        return "unknown"
    return "error"
