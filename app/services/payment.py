"""Taking payments: the seed's Strategy pattern (`PaymentProvider`, `StripeProvider`,
`PayPalProvider`, `PaymentProviderFactory`, `PaymentService`, all importable from here)
and the rules that keep a fallback from charging twice.

A payment moves money in two steps: the provider-side intent is created (nothing moves),
then it is confirmed or captured. `PaymentProviderFactory` walks its chain only while
creating the intent and only on `ProviderUnavailable`; once an intent exists the payment
never changes provider. `OutcomeUnknown` leaves it pending: the same call is retried once
with the same idempotency key, then a reconciliation job (`job.payment_reconcile`) looks it
up. Keys derive from the payment id and the step (`payment-42-intent`, `payment-42-confirm`,
`payment-42-refund-2`), so a double submit, a retry after a crash or a restart charges once.
Provider calls run outside database transactions; a lease on the row keeps two processes
from working on one payment at once.

The pieces, each in a module of its own: the chain and its breakers (payment_chain), each
provider call and its ledger row (payment_calls), what an answer does to the payment
(payment_outcomes), the state machine and the reads (payment_records), refunds
(payment_refunds), the providers (payment_providers, payment_stripe, payment_paypal).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import get_args

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.events import SYSTEM, Actor
from app.core.metrics import PAYMENT_FALLBACKS, PAYMENT_PROVIDER_SECONDS, PAYMENTS
from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.models.base import MAX_ID, utcnow
from app.models.item import Item
from app.models.messaging import Delivery
from app.models.payment import (
    PAYMENT_STATUSES,
    Payment,
    ProviderName,
    TransactionKind,
)
from app.models.user import User
from app.services import payment_refunds
from app.services.payment_calls import ProviderCalls, Transaction
from app.services.payment_chain import PaymentProviderFactory, PaymentsUnavailable
from app.services.payment_outcomes import (
    LEASE,
    claim,
    record_failure,
    record_result,
    record_unknown,
)
from app.services.payment_paypal import PayPalProvider
from app.services.payment_providers import (
    ChargeRequest,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PaymentError,
    PaymentProvider,
    ProviderResult,
    ProviderUnavailable,
    method_kind,
)
from app.services.payment_records import (
    Record,
    advance,
    apply_refunded,
    decline_words,
    iter_pending,
    list_payments,
    minor_units,
    oldest_unknown_age,
    payment_of_delivery,
    visible_payment,
)
from app.services.payment_stripe import StripeProvider

__all__ = [
    "Declined",
    "InvalidRequest",
    "OutcomeUnknown",
    "PayPalProvider",
    "PaymentDeclined",
    "PaymentProvider",
    "PaymentProviderFactory",
    "PaymentService",
    "PaymentsUnavailable",
    "ProviderUnavailable",
    "Record",
    "StripeProvider",
    "Urls",
    "advance",
    "apply_refunded",
    "decline_words",
    "iter_pending",
    "list_payments",
    "minor_units",
    "oldest_unknown_age",
    "payment_of_delivery",
    "visible_payment",
]

MAX_AMOUNT = 99_999_999  # minor units: Stripe's own limit for most currencies


# Every provider's series exist from the start at 0: a counter or histogram absent until
# its first payment hides it from the dashboard and from alerts built on increase().
for _provider in get_args(ProviderName):
    for _status in PAYMENT_STATUSES:
        PAYMENTS.labels(provider=_provider, status=_status)
    for _kind in get_args(TransactionKind):
        PAYMENT_PROVIDER_SECONDS.labels(provider=_provider, operation=_kind)


class PaymentDeclined(AppError):
    status, title, code = 402, "Payment declined", "payment_declined"


@dataclass(frozen=True)
class Urls:
    """Where PayPal sends the buyer back after approving (or cancelling) payment `id`."""

    return_url: Callable[[int], str]
    cancel_url: Callable[[int], str]


_NO_URLS = Urls(return_url=lambda _id: "", cancel_url=lambda _id: "")


class PaymentService:
    """The one door to payments: create, continue, refund, reconcile."""

    def __init__(self, factory: PaymentProviderFactory, transaction: Transaction, *, currency: str):
        self.factory = factory
        self.transaction = transaction
        self.currency = currency
        self.calls = ProviderCalls(factory, transaction)

    # --- paying ------------------------------------------------------------------------

    def pay(
        self,
        user_id: int,
        item_id: int,
        *,
        payment_method: str | None,
        idempotency_key: str | None,
        urls: Urls,
        actor: Actor,
    ) -> tuple[Payment, bool]:
        """Buy an item at its price in the database; returns the payment and whether this
        call made it (False: an earlier call with the same key did, and it is returned).
        `payment_method`: a Stripe PaymentMethod, a PayPal vault token, or None (PayPal's
        approval page)."""
        key = f"u{user_id}:{idempotency_key or uuid.uuid4().hex}"
        existing = self._by_key(key, item_id)
        if existing is not None:
            return existing, False
        try:
            with self.transaction() as session:
                payment = self._new_payment(session, user_id, item_id, key, payment_method)
                payment_id = payment.id
        except IntegrityError:  # a concurrent request with the same key won
            found = self._by_key(key, item_id)
            if found is None:
                raise
            return found, False
        self._start(payment_id, urls, actor)
        return self.get(payment_id), True

    def _by_key(self, key: str, item_id: int) -> Payment | None:
        with self.transaction() as session:
            found = session.scalar(select(Payment).where(Payment.idempotency_key == key))
            if found is not None and found.item_id != item_id:
                raise Conflict("This Idempotency-Key was used for another payment.")
            return found

    def _new_payment(
        self, session: Session, user_id: int, item_id: int, key: str, method: str | None
    ) -> Payment:
        item = session.get(Item, item_id) if 1 <= item_id <= MAX_ID else None
        if item is None:
            raise ValidationFailed(fields={"item_id": "No such item."})
        amount = minor_units(item.price)
        if amount <= 0:
            raise ValidationFailed(
                fields={"item_id": "This item is free: there is nothing to pay."}
            )
        if amount > MAX_AMOUNT:
            raise ValidationFailed(
                fields={"item_id": "This item costs more than can be paid online here."}
            )
        if not self.factory.names:
            raise PaymentsUnavailable("Payments are not configured on this server.")
        if method_kind(method) != "card" and not self.factory.chain(card=False):
            field = "payment_method" if method is None else "paypal_vault_id"
            raise ValidationFailed(
                fields={field: "Pay with a card: PayPal is not configured here."}
            )
        delivery = Delivery(
            channel="payment",
            kind="payment",
            recipient="(choosing a provider)",
            summary=f"{item.name[:150]}: {Decimal(amount) / 100:.2f} {self.currency.upper()}",
        )
        session.add(delivery)
        session.flush()
        payment = Payment(
            user_id=user_id,
            item_id=item.id,
            item_name=item.name,
            amount=amount,
            currency=self.currency,
            status="pending",
            payment_method=method,
            idempotency_key=key,
            lease_until=utcnow() + LEASE,
            delivery_id=delivery.id,
        )
        session.add(payment)
        session.flush()
        return payment

    def _start(self, payment_id: int, urls: Urls, actor: Actor) -> None:
        """Create the intent (walking the chain), then confirm it where no buyer must act."""
        request = self._charge_request(payment_id, urls)
        key = f"payment-{payment_id}-intent"
        kind: TransactionKind = "charge" if request.vault_id else "intent"  # vault: one step
        tried: list[str] = []
        for provider in self.factory.chain(card=bool(request.payment_method)):
            if tried:
                PAYMENT_FALLBACKS.labels(from_provider=tried[-1], to_provider=provider.name).inc()
            tried.append(provider.name)
            create = partial(provider.create_intent, request, idempotency_key=key)
            try:
                result = self.calls.twice(
                    payment_id, provider, kind, create, key=key, amount=request.amount
                )
            except ProviderUnavailable:
                continue
            except OutcomeUnknown:
                self._unknown(payment_id, provider.name)
                return
            except PaymentError as exc:
                self._fail(payment_id, provider.name, exc, actor)
                return
            if self._apply(payment_id, provider.name, result, actor) == "pending":
                self._confirm(payment_id, provider, result.reference, actor)
            return
        self._fail(
            payment_id, None, ProviderUnavailable("No payment provider can be reached."), actor
        )

    def _confirm(
        self, payment_id: int, provider: PaymentProvider, reference: str, actor: Actor
    ) -> None:
        key = f"payment-{payment_id}-confirm"
        confirm = partial(provider.confirm, reference, idempotency_key=key)
        try:
            amount = self.get(payment_id).amount
            result = self.calls.twice(
                payment_id, provider, "charge", confirm, key=key, amount=amount
            )
        except (OutcomeUnknown, ProviderUnavailable):
            self._unknown(payment_id, provider.name)
            return
        except PaymentError as exc:
            self._fail(payment_id, provider.name, exc, actor)
            return
        self._apply(payment_id, provider.name, result, actor)

    def _charge_request(self, payment_id: int, urls: Urls) -> ChargeRequest:
        with self.transaction() as session:
            payment = session.get(Payment, payment_id)
            user = session.get(User, payment.user_id) if payment else None
            if payment is None or user is None:
                raise NotFound("No such payment.")
            kind = method_kind(payment.payment_method)
            return ChargeRequest(
                payment_id=payment.id,
                amount=payment.amount,
                currency=payment.currency,
                payment_method=payment.payment_method if kind == "card" else None,
                vault_id=payment.payment_method if kind == "paypal_vault" else None,
                description=payment.item_name,
                email=user.email,
                return_url=urls.return_url(payment.id),
                cancel_url=urls.cancel_url(payment.id),
            )

    # --- continuing: 3-D Secure and PayPal returns, reconciliation ----------------------

    def refresh(self, payment_id: int, *, actor: Actor) -> Payment:
        """Ask the provider where the payment stands (after 3-D Secure) and apply it."""
        payment = self.get(payment_id)
        if payment.provider is None or payment.provider_ref is None:
            return payment
        provider = self.factory.get(payment.provider)
        lookup = partial(provider.retrieve, payment.provider_ref)
        try:
            result = self.calls.once(payment_id, provider.name, "lookup", lookup)
        except PaymentError:
            return payment
        self._apply(payment_id, provider.name, result, actor)
        return self.get(payment_id)

    def capture_approved(self, payment_id: int, *, actor: Actor) -> Payment:
        """The buyer approved the PayPal order: capture it (once, whatever repeats)."""
        payment = self.get(payment_id)
        if payment.status != "requires_action" or payment.provider != "paypal":
            return payment
        if not self._claim(payment_id):
            return payment
        self._confirm(payment_id, self.factory.get("paypal"), payment.provider_ref or "", actor)
        return self.get(payment_id)

    def reconcile(self, payment_id: int) -> str:
        """Resolve a payment left pending by an unknown outcome; returns its status."""
        payment = self.get(payment_id)
        if payment.status != "pending" or payment.provider is None or not self._claim(payment_id):
            return payment.status
        provider = self.factory.get(payment.provider)
        try:
            result = self._look_up(payment, provider)
        except (OutcomeUnknown, ProviderUnavailable):
            self._unknown(payment_id, provider.name)
            return "pending"
        except PaymentError as exc:
            self._fail(payment_id, provider.name, exc, SYSTEM)
            return "failed"
        if self._apply(payment_id, provider.name, result, SYSTEM) == "pending":
            self._confirm(payment_id, provider, result.reference, SYSTEM)
        return self.get(payment_id).status

    def _look_up(self, payment: Payment, provider: PaymentProvider) -> ProviderResult:
        """Where a payment stands at its provider: by its reference, or, when the intent's
        creation went unanswered, by creating it again with the same key."""
        if payment.provider_ref is not None:
            lookup = partial(provider.retrieve, payment.provider_ref)
            return self.calls.once(payment.id, provider.name, "lookup", lookup)
        request = self._charge_request(payment.id, _NO_URLS)
        key = f"payment-{payment.id}-intent"
        create = partial(provider.create_intent, request, idempotency_key=key)
        return self.calls.once(payment.id, provider.name, "lookup", create, key=key)

    # --- refunds -----------------------------------------------------------------------

    def refund(self, payment_id: int, amount: int | None, *, actor: Actor) -> Payment:
        """Give back all or part of what was captured (admins), as one ledger entry."""
        payment_refunds.refund(self.calls, self.get(payment_id), amount, actor=actor)
        return self.get(payment_id)

    # --- one unit of work per step ----------------------------------------------------

    def _apply(self, payment_id: int, provider: str, result: ProviderResult, actor: Actor) -> str:
        with self.transaction() as session:
            return record_result(session, payment_id, provider, result, actor)

    def _fail(self, payment_id: int, provider: str | None, exc: PaymentError, actor: Actor) -> None:
        with self.transaction() as session:
            record_failure(session, payment_id, provider, exc, actor)

    def _unknown(self, payment_id: int, provider: str) -> None:
        with self.transaction() as session:
            record_unknown(session, payment_id, provider)

    def _claim(self, payment_id: int) -> bool:
        with self.transaction() as session:
            return claim(session, payment_id)

    # --- reading -----------------------------------------------------------------------

    def get(self, payment_id: int) -> Payment:
        with self.transaction() as session:
            found = session.get(Payment, payment_id) if 1 <= payment_id <= MAX_ID else None
            if found is None:
                raise NotFound("No such payment.")
            session.refresh(found)
            return found
