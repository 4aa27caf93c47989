"""What the app owes the outside world: the outbox, the delivery ledger, processed messages.

An `OutboxMessage` is written in the same transaction as the change it announces
(app/services/outbox.py); a relay publishes it to RabbitMQ, or the embedded runner
runs it in-process. A `Delivery` is one message owed to someone (an email now;
webhook deliveries and payment attempts later), with its state for the ledger.
`ProcessedMessage` records which messages a task already applied, so running one
twice has its effect once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.listing import Listing
from app.models.base import Base, TimestampMixin, UTCDateTime, utcnow

DeliveryState = Literal["pending", "sent", "retrying", "failed", "dead"]
DELIVERY_STATES: tuple[DeliveryState, ...] = get_args(DeliveryState)
CHANNELS = ("email", "webhook", "payment")

DELIVERY_LISTING = Listing(
    sortable={"id": int, "created_at": datetime, "updated_at": datetime, "state": str},
    default_sort="created_at",
    default_direction="desc",
    filters={"state": DELIVERY_STATES, "channel": CHANNELS},
    search=("recipient", "summary"),
)


class OutboxMessage(Base):
    """One message to publish: its routing key (`kind`), payload and publishing state."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay reads only what is still to publish.
        Index(
            "ix_outbox_pending",
            "available_at",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(80), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the broker gave up on it


class Delivery(TimestampMixin, Base):
    """A message owed to someone, as the ledger shows it."""

    __tablename__ = "delivery"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'sent', 'retrying', 'failed', 'dead')", name="state_known"
        ),
        Index("ix_delivery_created_at_id", "created_at", "id"),
        Index("ix_delivery_updated_at_id", "updated_at", "id"),
        Index("ix_delivery_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)  # email, webhook, ...
    kind: Mapped[str] = mapped_column(String(80), nullable=False)  # welcome, reset_password
    recipient: Mapped[str] = mapped_column(String(500), nullable=False)
    summary: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(
        # checked at commit on PostgreSQL: an entry takes its message's id from the outbox
        # sequence as it is inserted, before the message (app/services/outbox.py)
        ForeignKey("outbox.id", ondelete="SET NULL", deferrable=True, initially="DEFERRED")
    )  # the outbox message that carries it now (a retry makes a new one)


class ProcessedMessage(Base):
    """A message a task has applied; its id makes a second run a no-op."""

    __tablename__ = "processed_message"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task: Mapped[str] = mapped_column(String(80), nullable=False)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
