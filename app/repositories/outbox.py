"""Data access for the outbox."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from app.models.base import UTCDateTime, utcnow
from app.models.messaging import OutboxMessage

# A ledger entry and the message that carries it, in one PostgreSQL statement: the entry
# takes its message's id from the outbox sequence, the message's payload its entry's id
# (the foreign key between them is checked at commit, migration 0007). Built once, so a
# call costs a bind and a round trip; through the ORM the pair cost six times the CPU of
# this, most of the outbox's price on a sign-up.
_ENTRY_WITH_MESSAGE = text(
    """
    WITH entry AS (
        INSERT INTO delivery (channel, kind, recipient, summary, state, attempts,
                              created_at, updated_at, message_id)
        VALUES (:channel, :template, :recipient, :summary, 'pending', 0, :now, :now,
                nextval(pg_get_serial_sequence('outbox', 'id')))
        RETURNING id, message_id
    )
    INSERT INTO outbox (id, kind, payload, created_at, available_at, attempts)
    SELECT message_id, :kind,
           (CAST(:payload AS jsonb) || jsonb_build_object('delivery_id', id))::json,
           :now, :now, 0
    FROM entry
    """
).bindparams(bindparam("now", type_=UTCDateTime))


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

    def add_with_entry(
        self, *, channel: str, template: str, recipient: str, summary: str, payload: dict[str, Any]
    ) -> None:
        """Insert a ledger entry and its message (PostgreSQL); the payload gains the entry's
        `delivery_id`."""
        self.session.execute(
            _ENTRY_WITH_MESSAGE,
            {
                "channel": channel,
                "template": template,
                "recipient": recipient,
                "summary": summary,
                "kind": f"{channel}.{template}",
                "payload": json.dumps(payload),
                "now": utcnow(),
            },
        )

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
