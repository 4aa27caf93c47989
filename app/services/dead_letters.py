"""Messages nobody will deliver without a person: dead letters, and what waits to retry.

A dead letter is an outbox message the broker dead-lettered (undecodable, no task,
its delivery limit spent) or whose last embedded retry failed. "Retry" sends it
again under a new message id (RQ refuses a second job with the old one): through
the delivery ledger when the message carries a delivery, else as a copy.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.events import Actor
from app.errors import Conflict, NotFound
from app.models.base import MAX_ID
from app.models.messaging import OutboxMessage
from app.repositories.outbox import OutboxRepository
from app.services import deliveries
from app.services.outbox import add_message

SHOWN = 50


def list_dead(session: Session, limit: int = SHOWN) -> list[OutboxMessage]:
    """Dead letters, the newest first."""
    return OutboxRepository(session).dead(limit)


def list_retrying(session: Session, limit: int = SHOWN) -> list[OutboxMessage]:
    """Messages that failed and wait for their next try, the soonest first."""
    return OutboxRepository(session).retrying(limit)


def retry(session: Session, message_id: int, *, actor: Actor) -> OutboxMessage:
    """Send a dead letter again; returns the dead row, now resolved."""
    row = session.get(OutboxMessage, message_id) if 1 <= message_id <= MAX_ID else None
    if row is None:
        raise NotFound("No such message.")
    if row.dead_at is None:
        raise Conflict("This message is not dead-lettered; there is nothing to retry.")
    delivery_id = row.payload.get("delivery_id")
    if delivery_id is None:
        replacement = add_message(session, row.kind, dict(row.payload))
        deliveries.resolve_dead(row, replacement.id)
    else:
        delivery = deliveries.get_delivery(session, int(delivery_id))
        if delivery.message_id == row.id and delivery.state in deliveries.RETRYABLE:
            deliveries.retry_now(session, delivery.id, actor=actor)  # resolves this row too
        else:  # its delivery went on under another message (or was sent): nothing to send
            row.dead_at = None
    session.flush()
    return row
