"""A user import started from the web: its file, its progress and its outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UTCDateTime

ImportState = Literal["queued", "running", "done", "failed"]
IMPORT_STATES: tuple[ImportState, ...] = get_args(ImportState)


class ImportRun(TimestampMixin, Base):
    """One upload: counters move while the job runs, so the page can show progress."""

    __tablename__ = "import_run"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    stored_as: Mapped[str] = mapped_column(String(255), nullable=False)  # under instance/uploads
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    send_welcome: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    rows_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    imported: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    already_registered: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
