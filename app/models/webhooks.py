"""Outgoing webhooks: endpoints that subscribe to event types, the messages they are owed,
and every attempt to deliver one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UTCDateTime, utcnow

WebhookEvent = Literal[
    "item.created",
    "item.updated",
    "item.deleted",
    "user.created",
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = get_args(WebhookEvent)
"""Every event an endpoint may subscribe to (each is in app/core/events.py's catalogue, with
its `data` shapes in app/services/webhook_payloads.py)."""
MAX_URL = 2000
MAX_DESCRIPTION = 500


class WebhookEndpoint(TimestampMixin, Base):
    """Where to send which events, signed with its secret (and, during a rotation, the old one)."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL), nullable=False)
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION), nullable=False, default="")
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    secret: Mapped[str] = mapped_column(String(120), nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(String(120))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first of a failure run
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )


class WebhookMessage(Base):
    """One event owed to one endpoint; its id is the `webhook-id` of every attempt."""

    __tablename__ = "webhook_message"
    __table_args__ = (
        Index("ix_webhook_message_endpoint_id_created_at", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_<random>
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False
    )
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # the exact JSON sent, every time
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class WebhookAttempt(Base):
    """One try: when, how long, what came back (the first 2 kB) or what went wrong."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_message_id_id", "message_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_message.id", ondelete="CASCADE"), nullable=False
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str] = mapped_column(Text, nullable=False, default="")
    error: Mapped[str | None] = mapped_column(String(500))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
