"""Payments: what a user paid for, every call made to a provider about it, and the events
providers sent us.

Amounts are integers in the currency's minor unit (cents). A payment's status only
moves forward (see app/services/payment_records.py's state machine), so events that arrive
out of order never undo a later state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.listing import Listing
from app.models.base import Base, TimestampMixin, UTCDateTime, utcnow

PaymentStatus = Literal[
    "pending", "requires_action", "succeeded", "failed", "refunded", "partially_refunded"
]
PAYMENT_STATUSES: tuple[PaymentStatus, ...] = get_args(PaymentStatus)
ProviderName = Literal["stripe", "paypal"]
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
TransactionKind = Literal["intent", "charge", "refund", "lookup"]
TransactionOutcome = Literal["succeeded", "requires_action", "declined", "unknown", "error"]

PAYMENT_LISTING = Listing(
    sortable={"id": int, "amount": int, "status": str, "created_at": datetime},
    default_sort="created_at",
    default_direction="desc",
    filters={"status": PAYMENT_STATUSES, "provider": PROVIDERS},
    search=("item_name",),
)


class Payment(TimestampMixin, Base):
    """One purchase of one item by one user, through one provider."""

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'requires_action', 'succeeded', 'failed', 'refunded', "
            "'partially_refunded')",
            name="status_known",
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refund_bound"),
        Index("ix_payment_user_id_id", "user_id", "id"),
        Index("ix_payment_created_at_id", "created_at", "id"),
        Index("ix_payment_status_id", "status", "id"),
        Index("ix_payment_amount_id", "amount", "id"),
        Index("ix_payment_provider_ref", "provider", "provider_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False
    )
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id", ondelete="SET NULL"))
    item_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    amount: Mapped[int] = mapped_column(Integer, nullable=False)  # minor units
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(24), nullable=False, default="pending")
    provider: Mapped[str | None] = mapped_column(String(16))  # set once an intent exists
    provider_ref: Mapped[str | None] = mapped_column(String(100))  # PaymentIntent / order id
    charge_ref: Mapped[str | None] = mapped_column(String(100))  # Stripe charge / PayPal capture
    # pm_... / card_... (Stripe), or a PayPal vault token; never card data
    payment_method: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(200))  # for Stripe.js 3-D Secure
    approval_url: Mapped[str | None] = mapped_column(String(2000))  # PayPal's approval page
    decline_code: Mapped[str | None] = mapped_column(String(80))
    failure_message: Mapped[str | None] = mapped_column(String(300))
    refunded_amount: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    refund_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # who works on it now
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id", ondelete="SET NULL"))


class PaymentTransaction(Base):
    """One call to a provider about a payment: the ledger the payment page shows."""

    __tablename__ = "payment_transaction"
    __table_args__ = (Index("ix_payment_transaction_payment_id_id", "payment_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payment.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # intent, charge, refund, lookup
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    outcome: Mapped[str] = mapped_column(String(24), nullable=False)
    amount: Mapped[int | None] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    error_class: Mapped[str | None] = mapped_column(String(40))
    decline_code: Mapped[str | None] = mapped_column(String(80))
    message: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class PaymentEvent(Base):
    """An event a provider sent us (Stripe webhooks), stored raw before it is applied."""

    __tablename__ = "payment_event"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="provider_event"),
        Index("ix_payment_event_unprocessed", "processed", "object_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    event_id: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[str] = mapped_column(String(80), nullable=False)
    object_ref: Mapped[str | None] = mapped_column(String(100))  # the PaymentIntent it is about
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    raw: Mapped[str] = mapped_column(Text, nullable=False)
    processed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
