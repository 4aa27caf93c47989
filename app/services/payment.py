"""Taking payments: the provider chain, the rules that keep a fallback from charging twice,
and the one state machine every answer (ours, a webhook, the reconciler) goes through.

A payment moves money in two steps: the provider-side intent is created (nothing moves),
then it is confirmed or captured. `PaymentProviderFactory` walks its chain only while
creating the intent and only on `ProviderUnavailable`; once an intent exists the payment
never changes provider. `OutcomeUnknown` leaves it pending: the same call is retried once
with the same idempotency key, then a reconciliation job (`job.payment_reconcile`) looks it
up. Keys derive from the payment id and the step (`payment-42-intent`, `payment-42-confirm`,
`payment-42-refund-2`), so a double submit, a retry after a crash or a restart charges once.
Provider calls run outside database transactions; a lease on the row keeps two processes
from working on one payment at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import TypeVar, get_args

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.breaker import CircuitBreaker
from app.core.events import SYSTEM, Actor
from app.core.metrics import (
    PAYMENT_FALLBACKS,
    PAYMENT_PROVIDER_SECONDS,
    PAYMENT_UNKNOWN_OUTCOMES,
    PAYMENTS,
)
from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.models.base import MAX_ID, utcnow
from app.models.item import Item
from app.models.messaging import Delivery
from app.models.payment import (
    PAYMENT_STATUSES,
    Payment,
    PaymentTransaction,
    ProviderName,
    TransactionKind,
)
from app.models.user import User
from app.services.outbox import add_message
from app.services.payment_events import replay_stored
from app.services.payment_providers import (
    ChargeRequest,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PaymentError,
    PaymentProvider,
    PayPalProvider,
    ProviderResult,
    ProviderUnavailable,
    StripeProvider,
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
    sync_ledger,
    visible_payment,
)

__all__ = [
    "Declined",
    "InvalidRequest",
    "OutcomeUnknown",
    "PayPalProvider",
    "PaymentProvider",
    "PaymentProviderFactory",
    "PaymentService",
    "ProviderUnavailable",
    "Record",
    "StripeProvider",
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

T = TypeVar("T")
Transaction = Callable[[], AbstractContextManager[Session]]
LEASE = timedelta(seconds=60)
MAX_AMOUNT = 99_999_999  # minor units: Stripe's own limit for most currencies
RECONCILE_DELAYS = (10, 60, 300, 1800, 7200)  # seconds before each reconciliation try


# Every provider's series exist from the start at 0: a counter or histogram absent until
# its first payment hides it from the dashboard and from alerts built on increase().
for _provider in get_args(ProviderName):
    for _status in PAYMENT_STATUSES:
        PAYMENTS.labels(provider=_provider, status=_status)
    for _kind in get_args(TransactionKind):
        PAYMENT_PROVIDER_SECONDS.labels(provider=_provider, operation=_kind)


class PaymentDeclined(AppError):
    status, title, code = 402, "Payment declined", "payment_declined"


class PaymentsUnavailable(AppError):
    status, title, code = 503, "Payments unavailable", "payments_unavailable"


# --- the provider chain ------------------------------------------------------------------


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


# --- the payment's life ------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    """Where PayPal sends the buyer back after approving (or cancelling) payment `id`."""

    return_url: Callable[[int], str]
    cancel_url: Callable[[int], str]


class PaymentService:
    """The one door to payments: create, continue, refund, reconcile."""

    def __init__(self, factory: PaymentProviderFactory, transaction: Transaction, *, currency: str):
        self.factory = factory
        self.transaction = transaction
        self.currency = currency

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
        call made it (False: an earlier call with the same key did, and it is returned)."""
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
        kind = "charge" if request.vault_id else "intent"  # a vault token pays in one step
        tried: list[str] = []
        for provider in self.factory.chain(card=bool(request.payment_method)):
            if tried:
                PAYMENT_FALLBACKS.labels(from_provider=tried[-1], to_provider=provider.name).inc()
            tried.append(provider.name)
            try:
                result = self._twice(
                    payment_id,
                    provider,
                    kind,
                    key,
                    request.amount,
                    partial(provider.create_intent, request, idempotency_key=key),
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
        try:
            amount = self.get(payment_id).amount
            result = self._twice(
                payment_id,
                provider,
                "charge",
                key,
                amount,
                lambda: provider.confirm(reference, idempotency_key=key),
            )
        except (OutcomeUnknown, ProviderUnavailable):
            self._unknown(payment_id, provider.name)
            return
        except PaymentError as exc:
            self._fail(payment_id, provider.name, exc, actor)
            return
        self._apply(payment_id, provider.name, result, actor)

    def _twice(
        self,
        payment_id: int,
        provider: PaymentProvider,
        kind: str,
        key: str,
        amount: int | None,
        call: Callable[[], ProviderResult],
    ) -> ProviderResult:
        """A call, and once more with the same key if its outcome was unknown."""
        try:
            return self._timed(payment_id, provider.name, kind, key, amount, call)
        except OutcomeUnknown:
            return self._timed(payment_id, provider.name, kind, key, amount, call)

    def _timed(
        self,
        payment_id: int,
        provider: str,
        kind: str,
        key: str | None,
        amount: int | None,
        call: Callable[[], T],
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
        status = getattr(result, "status", "succeeded")
        entry.outcome = {"failed": "declined", "requires_action": "requires_action"}.get(
            status, "succeeded"
        )
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

    # --- outcomes ----------------------------------------------------------------------

    def _apply(self, payment_id: int, provider: str, result: ProviderResult, actor: Actor) -> str:
        """Record the provider's answer, then the webhooks that came before we knew the
        intent was ours; returns the payment's status."""
        with self.transaction() as session:
            payment = self._locked(session, payment_id)
            payment.provider, payment.provider_ref = provider, result.reference
            payment.charge_ref = result.charge_ref or payment.charge_ref
            payment.client_secret = result.client_secret or payment.client_secret
            payment.approval_url = result.approval_url or payment.approval_url
            if result.status == "failed":
                payment.decline_code = result.decline_code
                payment.failure_message = decline_words(result.decline_code)
            target = "pending" if result.status == "pending" else result.status
            advance(session, payment, target, actor)
            replay_stored(session, payment)
            sync_ledger(session, payment, retry_at=None)
            if payment.status != "pending":
                payment.lease_until = None
            return payment.status

    def _fail(self, payment_id: int, provider: str | None, exc: PaymentError, actor: Actor) -> None:
        with self.transaction() as session:
            payment = self._locked(session, payment_id)
            payment.provider = payment.provider or provider
            if isinstance(exc, Declined):
                payment.decline_code = exc.code
                payment.failure_message = decline_words(exc.code)
            else:
                payment.failure_message = exc.message[:300]
            advance(session, payment, "failed", actor, error=type(exc).__name__)
            payment.lease_until = None
            sync_ledger(session, payment, retry_at=None)

    def _unknown(self, payment_id: int, provider: str) -> None:
        """Sent, no answer: stays pending with this provider, and a job looks it up."""
        with self.transaction() as session:
            payment = self._locked(session, payment_id)
            payment.provider = provider
            payment.lease_until = None
            lookups = len(_lookups(session, payment_id))
            delay = RECONCILE_DELAYS[min(lookups, len(RECONCILE_DELAYS) - 1)]
            due = utcnow() + timedelta(seconds=delay)
            message = add_message(session, "job.payment_reconcile", {"payment_id": payment_id})
            message.available_at = due
            sync_ledger(session, payment, retry_at=due)

    def _locked(self, session: Session, payment_id: int) -> Payment:
        payment = session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update())
        if payment is None:
            raise NotFound("No such payment.")
        return payment

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
        reference = payment.provider_ref
        try:
            result = self._timed(
                payment_id,
                provider.name,
                "lookup",
                None,
                None,
                lambda: provider.retrieve(reference),
            )
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
            if payment.provider_ref is None:  # the intent's creation went unanswered: same key
                request = self._charge_request(payment_id, _NO_URLS)
                key = f"payment-{payment_id}-intent"
                result = self._timed(
                    payment_id,
                    provider.name,
                    "lookup",
                    key,
                    None,
                    lambda: provider.create_intent(request, idempotency_key=key),
                )
            else:
                ref = payment.provider_ref
                result = self._timed(
                    payment_id, provider.name, "lookup", None, None, lambda: provider.retrieve(ref)
                )
        except (OutcomeUnknown, ProviderUnavailable):
            self._unknown(payment_id, provider.name)
            return "pending"
        except PaymentError as exc:
            self._fail(payment_id, provider.name, exc, SYSTEM)
            return "failed"
        if self._apply(payment_id, provider.name, result, SYSTEM) == "pending":
            self._confirm(payment_id, provider, result.reference, SYSTEM)
        return self.get(payment_id).status

    def _claim(self, payment_id: int) -> bool:
        """Take the lease on a payment; False while another process holds it."""
        now = utcnow()
        with self.transaction() as session:
            claimed = session.execute(
                update(Payment)
                .where(Payment.id == payment_id)
                .where(or_(Payment.lease_until.is_(None), Payment.lease_until < now))
                .values(lease_until=now + LEASE)
            )
            return bool(getattr(claimed, "rowcount", 0))

    # --- refunds -----------------------------------------------------------------------

    def refund(self, payment_id: int, amount: int | None, *, actor: Actor) -> Payment:
        """Give back all or part of what was captured (admins), as one ledger entry."""
        payment = self.get(payment_id)
        if payment.status not in ("succeeded", "partially_refunded"):
            raise Conflict(
                f"Only a succeeded payment can be refunded; this one is {payment.status}."
            )
        remaining = payment.amount - payment.refunded_amount
        amount = remaining if amount is None else amount
        if amount <= 0 or amount > remaining:
            limit = f"{Decimal(remaining) / 100:.2f} {payment.currency.upper()}"
            raise ValidationFailed(
                fields={"amount": f"Refund between 0.01 and {limit} (what is left of the capture)."}
            )
        if not self._claim(payment_id):
            raise Conflict("This payment is being changed right now; try again in a moment.")
        provider = self.factory.get(payment.provider or "")
        key = f"payment-{payment_id}-refund-{payment.refund_count + 1}"
        captured = ProviderResult(
            status="succeeded", reference=payment.provider_ref or "", charge_ref=payment.charge_ref
        )
        try:
            done = self._timed(
                payment_id,
                provider.name,
                "refund",
                key,
                amount,
                lambda: provider.refund(captured, amount, payment.currency, idempotency_key=key),
            )
        except PaymentError as exc:
            self._release(payment_id)
            raise Conflict(f"The refund did not go through: {exc.message}") from exc
        with self.transaction() as session:
            found = self._locked(session, payment_id)
            found.refund_count += 1
            apply_refunded(session, found, found.refunded_amount + done.amount, actor)
            found.lease_until = None
        return self.get(payment_id)

    def _release(self, payment_id: int) -> None:
        with self.transaction() as session:
            session.execute(
                update(Payment).where(Payment.id == payment_id).values(lease_until=None)
            )

    # --- reading -----------------------------------------------------------------------

    def get(self, payment_id: int) -> Payment:
        with self.transaction() as session:
            found = session.get(Payment, payment_id) if 1 <= payment_id <= MAX_ID else None
            if found is None:
                raise NotFound("No such payment.")
            session.refresh(found)
            return found


_NO_URLS = Urls(return_url=lambda _id: "", cancel_url=lambda _id: "")


def _outcome_of(exc: PaymentError) -> str:
    if isinstance(exc, Declined):
        return "declined"
    if isinstance(exc, OutcomeUnknown):
        return "unknown"
    return "error"


def _lookups(session: Session, payment_id: int) -> list[int]:
    return list(
        session.scalars(
            select(PaymentTransaction.id).where(
                PaymentTransaction.payment_id == payment_id, PaymentTransaction.kind == "lookup"
            )
        )
    )
