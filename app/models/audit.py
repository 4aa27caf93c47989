"""Audit log rows: who did what, from where, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.events import EventType
from app.core.listing import Listing
from app.models.base import Base, UTCDateTime, utcnow

AUDIT_LISTING = Listing(
    sortable={"id": int, "created_at": datetime, "event_type": str},
    default_sort="created_at",
    default_direction="desc",
    filters={"event_type": tuple(t.value for t in EventType)},
    search=("actor_email", "subject_id"),
)


class AuditLog(Base):
    """One audited event. Rows are append-only; actor may be gone (SET NULL)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_created_at_id", "created_at", "id"),
        Index("ix_audit_log_event_type_id", "event_type", "id"),
        Index("ix_audit_log_actor_id_id", "actor_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    ip: Mapped[str | None] = mapped_column(String(45))
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
