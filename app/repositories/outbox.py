"""Data access for the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.models.messaging import OutboxMessage


class OutboxRepository:
    """Pending messages, claimed in order; a second claimer skips the locked ones."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, limit: int, *, due_by: datetime) -> list[OutboxMessage]:
        """Unpublished messages that are due, oldest first, locked (SKIP LOCKED on PostgreSQL)."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None), OutboxMessage.available_at <= due_by)
            .order_by(OutboxMessage.available_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self.session.scalars(stmt))

    def set_published(self, ids: list[int], when: datetime) -> None:
        if ids:
            stmt = update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(published_at=when)
            self.session.execute(stmt.execution_options(synchronize_session=False))

    def backlog(self) -> tuple[int, datetime | None, int]:
        """(unpublished count, oldest unpublished creation time, dead count)."""
        waiting = self.session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(
                OutboxMessage.published_at.is_(None)
            )
        ).one()
        dead = self.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.dead_at.isnot(None))
        )
        return int(waiting[0] or 0), waiting[1], int(dead or 0)

    def dead(self, limit: int) -> list[OutboxMessage]:
        """Dead letters, the newest first."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.dead_at.isnot(None))
            .order_by(OutboxMessage.dead_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def retrying(self, limit: int) -> list[OutboxMessage]:
        """Messages waiting for a retry (they failed at least once), the soonest first."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None), OutboxMessage.attempts > 0)
            .order_by(OutboxMessage.available_at, OutboxMessage.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))
