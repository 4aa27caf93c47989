"""Stripe as a payment provider: PaymentIntents through the official `stripe` library
(`StripeClient`), its API base configurable so development and tests use localstripe.

Every Stripe exception becomes one of the provider errors (app/services/payment_providers.py):
a connection refused or a name that does not resolve is `ProviderUnavailable`, a request
sent and unanswered (timeout, other 5xx) is `OutcomeUnknown`, a card error is `Declined`.
"""

from __future__ import annotations

from typing import Any

import stripe
from stripe._base_address import BaseAddresses

from app.services.payment_providers import (
    NOT_SENT,
    ChargeRequest,
    Declined,
    IntentStatus,
    InvalidRequest,
    OutcomeUnknown,
    PaymentProvider,
    ProviderName,
    ProviderResult,
    ProviderUnavailable,
    RefundResult,
)


class StripeProvider(PaymentProvider):
    """Stripe PaymentIntents: attach the method to a customer, create, then confirm."""

    name: ProviderName = "stripe"

    def __init__(self, api_key: str, *, api_base: str | None = None, timeout: float = 10.0):
        bases: BaseAddresses = {"api": api_base.rstrip("/")} if api_base else {}
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=bases,
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=0,  # we retry ourselves, with our keys
        )

    def create_intent(self, request: ChargeRequest, *, idempotency_key: str) -> ProviderResult:
        with _stripe_errors():
            customer = self.client.v1.customers.create(
                params={
                    "email": request.email,
                    "metadata": _metadata(request),
                },
                options={"idempotency_key": f"{idempotency_key}-customer"},
            )
            method = request.payment_method or ""
            if method.startswith("pm_"):  # a legacy card_ id (from a token) needs no attaching
                self.client.v1.payment_methods.attach(
                    method,
                    params={"customer": customer.id},
                    options={"idempotency_key": f"{idempotency_key}-attach"},
                )
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": request.amount,
                    "currency": request.currency,
                    "customer": customer.id,
                    "payment_method": method,
                    "metadata": _metadata(request),
                },
                options={"idempotency_key": idempotency_key},
            )
        return _stripe_result(intent)

    def confirm(self, reference: str, *, idempotency_key: str) -> ProviderResult:
        with _stripe_errors():
            intent = self.client.v1.payment_intents.confirm(
                reference, options={"idempotency_key": idempotency_key}
            )
        return _stripe_result(intent)

    def retrieve(self, reference: str) -> ProviderResult:
        with _stripe_errors():
            intent = self.client.v1.payment_intents.retrieve(reference)
        return _stripe_result(intent)

    def refund(
        self, result: ProviderResult, amount: int, currency: str, *, idempotency_key: str
    ) -> RefundResult:
        with _stripe_errors():
            refund = self.client.v1.refunds.create(
                params={"payment_intent": result.reference, "amount": amount},
                options={"idempotency_key": idempotency_key},
            )
        return RefundResult(reference=refund.id, amount=int(refund.amount))


def _metadata(request: ChargeRequest) -> dict[str, str]:
    return {"payment_id": str(request.payment_id)}


def _stripe_result(found: Any) -> ProviderResult:
    intent = found.to_dict()
    status = str(intent["status"])
    charge = intent.get("latest_charge")
    charge_ref = charge if isinstance(charge, str) or charge is None else charge.get("id")
    error = intent.get("last_payment_error") or {}
    mapped: IntentStatus
    if status == "succeeded":
        mapped = "succeeded"
    elif status == "requires_action":
        mapped = "requires_action"
    elif status == "requires_payment_method" and error:
        mapped = "failed"
    else:
        mapped = "pending"
    return ProviderResult(
        status=mapped,
        reference=str(intent["id"]),
        charge_ref=charge_ref,
        client_secret=intent.get("client_secret"),
        decline_code=error.get("decline_code") or error.get("code"),
        message=error.get("message"),
    )


class _stripe_errors:
    """Translate Stripe's exceptions into the provider error tree."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or not isinstance(exc, stripe.StripeError):
            return
        message = exc.user_message or str(exc) or "The payment provider refused the request."
        if isinstance(exc, stripe.CardError):
            code = exc.error.decline_code if exc.error and exc.error.decline_code else exc.code
            raise Declined(message, code=code or "card_declined") from exc
        if isinstance(exc, stripe.APIConnectionError):
            if any(marker in str(exc) for marker in NOT_SENT) or "refused" in str(exc):
                raise ProviderUnavailable("Stripe cannot be reached.") from exc
            raise OutcomeUnknown("Stripe did not answer in time.") from exc
        if isinstance(exc, stripe.RateLimitError) or exc.http_status == 503:
            raise ProviderUnavailable("Stripe is not taking requests now.") from exc
        if exc.http_status is not None and exc.http_status >= 500:
            raise OutcomeUnknown(f"Stripe answered {exc.http_status}.") from exc
        raise InvalidRequest(message, code=exc.code) from exc
