"""The payment provider role and the one error tree every vendor error becomes.

Providers (each in a module of its own): `StripeProvider` (app/services/payment_stripe.py)
and `PayPalProvider` (app/services/payment_paypal.py); tests add fakes beside them.

Errors (what the caller may do next):
- `ProviderUnavailable`: the request never reached the provider (refused, DNS, 503,
  429, circuit open). Nothing moved; another provider may be tried.
- `OutcomeUnknown`: the request was sent but no answer came (timeout, dropped
  connection, 5xx). Money may have moved: retry with the same idempotency key or
  look it up, never try elsewhere.
- `Declined`: the provider refused the payment method, with its decline code.
- `InvalidRequest`: anything else the provider refused.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal

ProviderName = Literal["stripe", "paypal"]
IntentStatus = Literal["pending", "requires_action", "succeeded", "failed"]
MethodKind = Literal["card", "paypal_vault", "paypal"]
CARD_PREFIXES = ("pm_", "card_")  # Stripe's ids; PayPal vault tokens never start so
NOT_SENT = ("NewConnectionError", "NameResolution", "Failed to resolve", "ConnectTimeout")


class PaymentError(Exception):
    """A provider call failed; `message` is safe to show."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ProviderUnavailable(PaymentError):
    """The provider could not be reached; nothing was sent."""


class OutcomeUnknown(PaymentError):
    """The request was sent and no answer came back: money may or may not have moved."""


class Declined(PaymentError):
    """The provider refused the payment method; `code` is its decline code."""


class InvalidRequest(PaymentError):
    """The provider refused the request for another reason."""


def method_kind(method: str | None) -> MethodKind:
    """What a payment is paid with: a Stripe PaymentMethod (`pm_`, `card_`), a PayPal
    vault token (charged without the buyer), or nothing yet (the buyer approves on PayPal)."""
    if method is None:
        return "paypal"
    return "card" if method.startswith(CARD_PREFIXES) else "paypal_vault"


@dataclass(frozen=True, kw_only=True)
class ChargeRequest:
    """What a provider needs to take one payment (never card data: a PaymentMethod id, or
    a PayPal vault token)."""

    payment_id: int
    amount: int  # minor units
    currency: str
    payment_method: str | None  # a Stripe PaymentMethod id
    description: str
    email: str
    return_url: str  # where PayPal sends the buyer after approving
    cancel_url: str
    vault_id: str | None = None  # a PayPal vault token: charged at once, nobody approves


@dataclass(frozen=True, kw_only=True)
class ProviderResult:
    """Where a provider-side payment stands."""

    status: IntentStatus
    reference: str
    charge_ref: str | None = None
    client_secret: str | None = None
    approval_url: str | None = None
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class RefundResult:
    reference: str
    amount: int


class PaymentProvider(abc.ABC):
    """One payment provider. Every money-moving call takes an idempotency key."""

    name: ProviderName

    @abc.abstractmethod
    def create_intent(self, request: ChargeRequest, *, idempotency_key: str) -> ProviderResult:
        """Create the provider-side intent (no money moves): "pending" when it can be
        confirmed now, "requires_action" when the buyer must approve it first."""

    @abc.abstractmethod
    def confirm(self, reference: str, *, idempotency_key: str) -> ProviderResult:
        """Move the money: confirm the PaymentIntent, or capture the approved order."""

    @abc.abstractmethod
    def retrieve(self, reference: str) -> ProviderResult:
        """Where the intent stands now (reconciliation and 3-D Secure returns)."""

    @abc.abstractmethod
    def refund(
        self, result: ProviderResult, amount: int, currency: str, *, idempotency_key: str
    ) -> RefundResult:
        """Give back `amount` (minor units) of a captured payment."""
