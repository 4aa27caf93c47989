"""The audit log: every event becomes a row, written in the publisher's transaction.

The row joins the session of the change that caused the event, so the change
and its audit record commit (or roll back) together.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.core.events import Event, EventType
from app.core.listing import ListQuery, Page, Seek
from app.models.audit import AUDIT_LISTING, AuditLog
from app.models.user import User
from app.repositories.audit import AuditRepository

LISTING = AUDIT_LISTING
AUDITED: frozenset[EventType] = frozenset(EventType)


class AuditHandler:
    """EventHandler writing one AuditLog row per audited event."""

    name = "audit"
    handles = AUDITED

    def handle(self, event: Event, session: Session | None) -> None:
        if session is None:
            raise RuntimeError(f"{event.type} was published outside a transaction: not audited")
        session.add(audit_row(event, session))  # flushed with the change it records


def list_entries(session: Session, query: ListQuery, seek: Seek | None = None) -> Page[AuditLog]:
    """One page of the audit log (newest first by default)."""
    return AuditRepository(session).list(query, seek=seek)


def audit_row(event: Event, session: Session) -> AuditLog:
    """Build the row for an event, resolving the actor's email for display."""
    actor_email: str | None = event.payload.get("actor_email")
    if actor_email is None and event.actor_id is not None:
        actor = session.get(User, event.actor_id)
        actor_email = actor.email if actor else None
    data: dict[str, Any] = {k: v for k, v in event.payload.items() if k != "actor_email"}
    return AuditLog(
        event_id=event.id,
        event_type=event.type.value,
        actor_id=event.actor_id,
        actor_email=actor_email,
        ip=event.ip,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        data=data,
        created_at=event.occurred_at,
    )


def recorded_event_types(session: Session) -> list[str]:
    """The event types the log holds (a filter offers only these)."""
    return AuditRepository(session).event_types()
