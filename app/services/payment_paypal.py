"""PayPal as a payment provider: Orders v2 through PayPal's official `paypal-server-sdk`.

The SDK hard-codes its two hosts, but `PaypalServersdkClient(config=...)` takes any
`Configuration`, whose `get_base_uri` it calls for every request: `_BaseConfiguration`
overrides that one method, so the same SDK talks to a local fake in tests. Every call
that moves money carries `PayPal-Request-Id` (our idempotency key): PayPal answers a
repeat with the first answer and moves nothing more.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests
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
