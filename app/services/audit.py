"""The audit handler: turns audit-worthy events into audit_log rows.

The row joins the session of the change that caused the event, so the change
and its audit record commit (or roll back) together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.core.events import Event, EventType
from app.models.audit import AuditLog
from app.models.user import User

AUDITED: frozenset[EventType] = frozenset(
    {
        EventType.USER_CREATED,
        EventType.USER_UPDATED,
        EventType.USER_DELETED,
        EventType.USER_LOGIN,
        EventType.USER_LOGOUT,
        EventType.USER_LOGIN_FAILED,
        EventType.ITEM_CREATED,
        EventType.ITEM_UPDATED,
        EventType.ITEM_DELETED,
        EventType.AUDIT_LOG,
    }
)


class AuditHandler:
    """EventHandler writing one AuditLog row per audited event."""

    name = "audit"
    handles = AUDITED

    def __init__(self, session: Callable[[], Session]) -> None:
        self._session = session

    def handle(self, event: Event) -> None:
        session = self._session()
        session.add(audit_row(event, session))  # flushed with the change it records


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
