"""Messages owed to the outside world, added in the transaction of the change behind them.

A state change and the message announcing it commit together or not at all
(the transactional outbox): the OutboxHandler turns events into messages with
the publisher's session, so a rolled-back change sends nothing and a committed
one is never lost, whatever is down. What carries them on (RabbitMQ and RQ, or
the embedded runner) lives in app/jobs/.

Message kinds are routing keys: `email.<template>`, `job.<name>`, later
`webhook.*`; the part before the dot picks the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.core.events import Event, EventType
from app.models.base import utcnow
from app.models.messaging import Delivery, OutboxMessage
from app.models.user import User
from app.repositories.outbox import OutboxRepository

QUEUES = {"email": "emails", "webhook": "webhooks", "job": "default"}
NOTIFY_CHANNEL = "outbox"  # a trigger NOTIFYs here on PostgreSQL (0007); the relay LISTENs
OUTBOX_ADDED = "outbox_added"  # session.info key: the embedded runner wakes after the commit


@dataclass(frozen=True)
class Message:
    """An outbox message as a task receives it."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int = 0  # runs before this one (the embedded runner's count)

    @property
    def queue(self) -> str:
        return queue_for(self.kind)


def queue_for(kind: str) -> str:
    """The queue a kind of message runs on ("email.welcome" -> "emails")."""
    return QUEUES.get(kind.split(".", 1)[0], "default")


def add_message(session: Session, kind: str, payload: dict[str, Any]) -> OutboxMessage:
    """Stage a message in the caller's transaction; it leaves only if that commits. On
    PostgreSQL a trigger on `outbox` NOTIFYs the relay (migration 0007)."""
    message = OutboxMessage(kind=kind, payload=payload)
    session.add(message)
    session.flush()
    session.info[OUTBOX_ADDED] = True
    return message


def queue_email(session: Session, template: str, *, to: str, summary: str, **context: Any) -> None:
    """Owe someone an email: a ledger entry and the message that will send it.

    The message's payload names the entry, and the entry its message. On PostgreSQL both
    go in one statement (OutboxRepository.add_with_entry), which is what keeps a sign-up's
    welcome email to a fraction of a millisecond; SQLite, the embedded default, takes the
    ORM's three."""
    if session.get_bind().dialect.name == "postgresql":
        OutboxRepository(session).add_with_entry(
            channel="email", template=template, recipient=to, summary=summary[:200], payload=context
        )
        session.info[OUTBOX_ADDED] = True
        return
    delivery = Delivery(channel="email", kind=template, recipient=to, summary=summary[:200])
    session.add(delivery)
    session.flush()
    message = add_message(session, f"email.{template}", {"delivery_id": delivery.id, **context})
    delivery.message_id = message.id


def as_message(row: OutboxMessage) -> Message:
    return Message(row.id, row.kind, dict(row.payload), row.attempts)


class OutboxHandler:
    """Turns account events into the emails they owe (welcome, reset, security notices)."""

    name = "outbox"
    handles = frozenset(
        {EventType.USER_CREATED, EventType.USER_UPDATED, EventType.PASSWORD_RESET_REQUESTED}
    )

    def handle(self, event: Event, session: Session | None) -> None:
        if session is None:
            raise RuntimeError(f"{event.type} was published outside a transaction: no outbox")
        user = session.get(User, int(event.subject_id)) if event.subject_id else None
        if user is None:
            return
        for template, to in _emails_for(event, user):
            queue_email(
                session,
                template,
                to=to,
                summary=SUMMARIES[template],
                user_id=user.id,
                occurred_at=_iso(event.occurred_at),
                ip=event.ip,
            )


SUMMARIES = {
    "welcome": "Welcome to Ledgerly",
    "reset_password": "Reset your password",
    "password_changed": "Your password was changed",
    "email_changed": "Your email address was changed",
}


def _emails_for(event: Event, user: User) -> list[tuple[str, str]]:
    """Which emails an event owes, and to whom."""
    payload = event.payload
    if event.type == EventType.USER_CREATED:  # sign-ups, and imports that ask for it
        return [("welcome", user.email)] if payload.get("welcome") else []
    if event.type == EventType.PASSWORD_RESET_REQUESTED:
        return [("reset_password", user.email)]
    fields = set(payload.get("fields") or ())
    emails = []
    if "password" in fields:
        emails.append(("password_changed", user.email))
    if "email" in fields and payload.get("old_email"):
        emails.append(("email_changed", str(payload["old_email"])))  # where resets went before
    return emails


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# --- carrying messages on: the relay, the embedded runner, the dead-letter record ---------


def claim_unpublished(session: Session, limit: int) -> list[Message]:
    """The oldest messages still to publish, locked so a second relay skips them."""
    return [as_message(row) for row in OutboxRepository(session).claim(limit, due_by=utcnow())]


def mark_published(session: Session, message_ids: list[int]) -> None:
    """Handed over (confirmed by the broker, or taken by the embedded runner)."""
    OutboxRepository(session).set_published(message_ids, utcnow())


def reschedule(session: Session, message_id: int, error: str, delay_seconds: float) -> None:
    """Try again later (the embedded runner's retry): back among the unpublished."""
    row = session.get(OutboxMessage, message_id)
    if row is not None:
        row.published_at = None
        row.attempts += 1
        row.last_error = error[:500]
        row.available_at = utcnow() + timedelta(seconds=delay_seconds)
        session.flush()


def give_up(session: Session, message_id: int, error: str) -> None:
    """No more attempts (the embedded runner's last retry failed): the message stays handed
    over, with why it failed, and is a dead letter like one the broker gave up on, so the
    jobs page lists it for a person to retry."""
    row = session.get(OutboxMessage, message_id)
    if row is not None:
        row.attempts += 1
        row.last_error = error[:500]
        row.dead_at = utcnow()
        session.flush()


def mark_dead(session: Session, message_id: int, reason: str) -> Message | None:
    """Record that the broker dead-lettered a message (its ledger entry follows)."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        return None
    row.dead_at, row.last_error = utcnow(), f"dead: {reason}"[:500]
    session.flush()
    return as_message(row)


@dataclass(frozen=True)
class Backlog:
    """What is still waiting to leave: how many, and for how long the oldest has waited."""

    pending: int
    oldest_age_seconds: float
    dead: int


def backlog(session: Session) -> Backlog:
    """The outbox's backlog, for /readyz and the metrics."""
    pending, oldest, dead = OutboxRepository(session).backlog()
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(pending, max(0.0, age), dead)
