"""Payment providers behind one interface, and the one error tree every vendor error becomes.

- `StripeProvider`: the official `stripe` library (`StripeClient`), its API base
  configurable so development and tests use localstripe.
- `PayPalProvider`: Orders v2 through PayPal's official `paypal-server-sdk`. The SDK
  hard-codes its two hosts, but `PaypalServersdkClient(config=...)` takes any
  `Configuration`, whose `get_base_uri` it calls for every request: `_BaseConfiguration`
  overrides that one method, so the same SDK talks to a local fake in tests.

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
from decimal import Decimal
from typing import Any, Literal

import requests
import stripe
from paypalserversdk.configuration import Configuration, Environment
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown
from paypalserversdk.models.checkout_payment_intent import CheckoutPaymentIntent
from paypalserversdk.models.money import Money
from paypalserversdk.models.order_request import OrderRequest
from paypalserversdk.models.payment_source import PaymentSource
from paypalserversdk.models.paypal_wallet import PaypalWallet
from paypalserversdk.models.paypal_wallet_experience_context import (
    PaypalWalletExperienceContext,
)
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient
from stripe._base_address import BaseAddresses

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


# --- Stripe ------------------------------------------------------------------------------


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


# --- PayPal ------------------------------------------------------------------------------


class _BaseConfiguration(Configuration):
    """The SDK's configuration with its one base URI replaced (a local fake, or a proxy)."""

    def __init__(self, base_uri: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_uri = base_uri.rstrip("/")

    def get_base_uri(self, server: Any = None) -> str:
        return self._base_uri


class PayPalProvider(PaymentProvider):
    """PayPal Orders v2: create an order, the buyer approves it on PayPal's page, capture."""

    name: ProviderName = "paypal"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        api_base: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        credentials = ClientCredentialsAuthCredentials(
            o_auth_client_id=client_id, o_auth_client_secret=client_secret
        )
        options: dict[str, Any] = {
            "timeout": timeout,
            "max_retries": 0,
            "environment": Environment.SANDBOX,
            "client_credentials_auth_credentials": credentials,
        }
        config = _BaseConfiguration(api_base, **options) if api_base else Configuration(**options)
        self.client = PaypalServersdkClient(config=config)

    def create_intent(self, request: ChargeRequest, *, idempotency_key: str) -> ProviderResult:
        """An order the buyer approves on PayPal's page; or, for a vault token, an order
        PayPal captures at once (one step: the answer is succeeded or failed)."""
        if request.vault_id:
            wallet = PaypalWallet(vault_id=request.vault_id)
        else:
            wallet = PaypalWallet(
                experience_context=PaypalWalletExperienceContext(
                    return_url=request.return_url,
                    cancel_url=request.cancel_url,
                    user_action="PAY_NOW",
                )
            )
        body = OrderRequest(
            intent=CheckoutPaymentIntent.CAPTURE,
            purchase_units=[
                PurchaseUnitRequest(
                    amount=AmountWithBreakdown(
                        currency_code=request.currency.upper(),
                        value=_decimal(request.amount),
                    ),
                    custom_id=str(request.payment_id),
                    description=request.description[:127],
                )
            ],
            payment_source=PaymentSource(paypal=wallet),
        )
        with _paypal_errors():
            response = self.client.orders.create_order(
                {"body": body, "paypal_request_id": idempotency_key, "prefer": "return=minimal"}
            )
        return _paypal_result(response.body)

    def confirm(self, reference: str, *, idempotency_key: str) -> ProviderResult:
        with _paypal_errors():
            response = self.client.orders.capture_order(
                {"id": reference, "paypal_request_id": idempotency_key}
            )
        return _paypal_result(response.body)

    def retrieve(self, reference: str) -> ProviderResult:
        with _paypal_errors():
            response = self.client.orders.get_order({"id": reference})
        return _paypal_result(response.body)

    def refund(
        self, result: ProviderResult, amount: int, currency: str, *, idempotency_key: str
    ) -> RefundResult:
        if not result.charge_ref:
            raise InvalidRequest("This PayPal order has no capture to refund.")
        body = RefundRequest(amount=Money(currency_code=currency.upper(), value=_decimal(amount)))
        with _paypal_errors():
            response = self.client.payments.refund_captured_payment(
                {
                    "capture_id": result.charge_ref,
                    "body": body,
                    "paypal_request_id": idempotency_key,
                }
            )
        return RefundResult(reference=str(response.body.id), amount=amount)


def _decimal(minor: int) -> str:
    return str((Decimal(minor) / 100).quantize(Decimal("0.01")))


def _paypal_result(order: Any) -> ProviderResult:
    status = str(getattr(order, "status", "") or "")
    approval = next(
        (
            link.href
            for link in getattr(order, "links", None) or []
            if link.rel in ("payer-action", "approve")
        ),
        None,
    )
    capture = None
    for unit in getattr(order, "purchase_units", None) or []:
        payments = getattr(unit, "payments", None)
        for found in getattr(payments, "captures", None) or []:
            capture = found
    mapped: IntentStatus = "pending"
    declined = capture is not None and str(getattr(capture, "status", "")) == "DECLINED"
    if status == "COMPLETED":
        mapped = "failed" if declined else "succeeded"
    elif status in ("CREATED", "PAYER_ACTION_REQUIRED"):
        mapped = "requires_action"
    return ProviderResult(
        status=mapped,
        reference=str(order.id),
        charge_ref=str(capture.id) if capture is not None else None,
        approval_url=approval,
        decline_code="instrument_declined" if declined else None,
    )


class _paypal_errors:
    """Translate the SDK's and requests' exceptions into the provider error tree."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            text = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, requests.exceptions.ConnectTimeout) or any(
                marker in text for marker in NOT_SENT
            ):
                raise ProviderUnavailable("PayPal cannot be reached.") from exc
            raise OutcomeUnknown("PayPal did not answer in time.") from exc
        if not isinstance(exc, ApiException):
            return
        status = int(exc.response_code or 0)
        issue = _paypal_issue(exc)
        if status in (429, 503):
            raise ProviderUnavailable("PayPal is not taking requests now.") from exc
        if status >= 500:
            raise OutcomeUnknown(f"PayPal answered {status}.") from exc
        if issue in ("INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED", "TRANSACTION_REFUSED"):
            raise Declined("PayPal declined the payment.", code=issue.lower()) from exc
        if issue == "ORDER_NOT_APPROVED":
            raise InvalidRequest("The buyer has not approved the PayPal order yet.", code=issue)
        raise InvalidRequest(f"PayPal refused the request ({issue or status}).", code=issue)


def _paypal_issue(exc: ApiException) -> str | None:
    details = getattr(exc, "details", None) or []
    for detail in details:
        issue = getattr(detail, "issue", None)
        if issue:
            return str(issue)
    return getattr(exc, "name", None)
