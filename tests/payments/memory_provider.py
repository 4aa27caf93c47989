"""A payment provider in memory, standing in for Stripe where no fake server runs (the API
fuzzing): intents are idempotent by key, `pm_card_chargeCustomerFail` is declined at the
charge, every other method pays, refunds never exceed what was captured."""

from __future__ import annotations

import itertools
import threading

from app.services.payment_providers import (
    ChargeRequest,
    Declined,
    InvalidRequest,
    PaymentProvider,
    ProviderName,
    ProviderResult,
    RefundResult,
)


class MemoryProvider(PaymentProvider):
    name: ProviderName = "stripe"

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.by_key: dict[str, ProviderResult] = {}
        self.methods: dict[str, str] = {}
        self.amounts: dict[str, int] = {}
        self.refunded: dict[str, int] = {}

    def create_intent(self, request: ChargeRequest, *, idempotency_key: str) -> ProviderResult:
        with self._lock:
            if idempotency_key not in self.by_key:
                ref = f"pi_memory_{next(self._ids)}"
                self.methods[ref] = request.payment_method or ""
                self.amounts[ref] = request.amount
                self.by_key[idempotency_key] = ProviderResult(status="pending", reference=ref)
            return self.by_key[idempotency_key]

    def confirm(self, reference: str, *, idempotency_key: str) -> ProviderResult:
        with self._lock:
            if idempotency_key not in self.by_key:
                if self.methods.get(reference) == "pm_card_chargeCustomerFail":
                    raise Declined("Your card was declined.", code="card_declined")
                self.by_key[idempotency_key] = ProviderResult(
                    status="succeeded", reference=reference, charge_ref=f"ch_{reference}"
                )
            return self.by_key[idempotency_key]

    def retrieve(self, reference: str) -> ProviderResult:
        return ProviderResult(status="succeeded", reference=reference)

    def refund(
        self, result: ProviderResult, amount: int, currency: str, *, idempotency_key: str
    ) -> RefundResult:
        with self._lock:
            ref = result.reference
            if self.refunded.get(ref, 0) + amount > self.amounts.get(ref, 0):
                raise InvalidRequest("Refund above the captured amount.")
            self.refunded[ref] = self.refunded.get(ref, 0) + amount
            return RefundResult(reference=f"re_{idempotency_key}", amount=amount)
