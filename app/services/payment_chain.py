"""The provider chain: registered providers in fallback order, each behind its own circuit
breaker, and the one place a provider call passes through that breaker.

The chain is walked only while creating an intent and only on `ProviderUnavailable`
(app/services/payment.py); a breaker opened by repeated unreachable or unanswered calls
makes the chain skip that provider for a while without trying to connect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from app.core.breaker import CircuitBreaker
from app.errors import AppError
from app.services.payment_providers import (
    OutcomeUnknown,
    PaymentError,
    PaymentProvider,
    ProviderUnavailable,
)

T = TypeVar("T")


class PaymentsUnavailable(AppError):
    status, title, code = 503, "Payments unavailable", "payments_unavailable"


class PaymentProviderFactory:
    """Registered providers in fallback order, each behind its own circuit breaker."""

    def __init__(self) -> None:
        self._providers: dict[str, PaymentProvider] = {}
        self._breakers: dict[str, CircuitBreaker] = {}

    def register(
        self, provider: PaymentProvider, *, threshold: int = 3, cooldown: float = 30.0
    ) -> PaymentProviderFactory:
        """Add a provider at the end of the chain."""
        self._providers[provider.name] = provider
        self._breakers[provider.name] = CircuitBreaker(
            f"payment:{provider.name}", threshold=threshold, cooldown=cooldown
        )
        return self

    @property
    def names(self) -> list[str]:
        return list(self._providers)

    def get(self, name: str) -> PaymentProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise PaymentsUnavailable(f"The payment provider {name} is not configured.") from None

    def breaker(self, name: str) -> CircuitBreaker:
        return self._breakers[name]

    def chain(self, *, card: bool) -> list[PaymentProvider]:
        """Providers to try, in order; Stripe only with a card PaymentMethod to charge."""
        return [p for p in self._providers.values() if card or p.name != "stripe"]

    def call(self, name: str, operation: Callable[[], T]) -> T:
        """Run one provider call through its breaker: unreachable or unanswered calls count
        as failures, and an open breaker answers ProviderUnavailable at once."""
        breaker = self._breakers[name]
        try:
            breaker.before_call()
        except Exception as exc:  # ServiceDown: circuit open
            raise ProviderUnavailable(f"{name} is failing; skipped for now.") from exc
        try:
            result = operation()
        except (ProviderUnavailable, OutcomeUnknown):
            breaker.failed()
            raise
        except PaymentError:
            breaker.succeeded()  # it answered
            raise
        breaker.succeeded()
        return result
