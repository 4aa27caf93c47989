"""The delivery ledger: every message the app owes someone, and how far it got.

Tasks move a delivery through pending -> sent, or retrying -> failed (retries
spent) or dead (the broker gave up on its message); "retry now" sends a failed
or dead one again under a new message. A delivery already sent is never sent
again by a duplicate run, so a message delivered twice reaches nobody twice.

Payment rows are not messages: a failed payment is never "sent again" (its buyer
pays again), and one whose outcome is unknown is looked up at its provider instead
(`action_for` says which a row offers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from app.core.events import Actor
from app.core.listing import ListQuery, Page, Seek
from app.errors import Conflict, NotFound
from app.models.base import MAX_ID, utcnow
from app.models.messaging import DELIVERY_LISTING, Delivery, OutboxMessage
from app.repositories.deliveries import DeliveryRepository
from app.services.outbox import add_message

LISTING = DELIVERY_LISTING
RETRYABLE = frozenset({"failed", "dead"})
MAX_ERROR = 1000
RowAction = Literal["retry", "check"]


def get_delivery(session: Session, delivery_id: int) -> Delivery:
    """One delivery; NotFound for ids no row can have."""
    found = DeliveryRepository(session).get(delivery_id) if 1 <= delivery_id <= MAX_ID else None
    if found is None:
        raise NotFound("No such delivery.")
    return found


def start_attempt(session: Session, delivery_id: int) -> Delivery | None:
    """The delivery to attempt now, its attempt counted; None when it was already sent."""
    delivery = DeliveryRepository(session).get(delivery_id)
    if delivery is None or delivery.state == "sent":
        return None
    delivery.attempts += 1
    session.flush()
    return delivery


def mark_sent(session: Session, delivery: Delivery) -> None:
    delivery.state, delivery.sent_at = "sent", utcnow()
    delivery.last_error = delivery.next_retry_at = None
    session.flush()


def mark_retrying(session: Session, delivery_id: int, error: str, next_at: datetime) -> None:
    _mark(session, delivery_id, "retrying", error, next_at)


def mark_failed(session: Session, delivery_id: int, error: str) -> None:
    _mark(session, delivery_id, "failed", error, None)


def mark_dead(session: Session, delivery_id: int, error: str) -> None:
    _mark(session, delivery_id, "dead", error, None)


def _mark(
    session: Session, delivery_id: int, state: str, error: str, next_at: datetime | None
) -> None:
    delivery = DeliveryRepository(session).get(delivery_id)
    if delivery is None or delivery.state == "sent":
        return
    delivery.state, delivery.last_error = state, error[:MAX_ERROR]
    delivery.next_retry_at = next_at
    session.flush()


def action_for(delivery: Delivery) -> RowAction | None:
    """What an admin can do with a row now: send its message again ("retry"), or, for a
    payment whose outcome is unknown, ask the provider how it ended ("check")."""
    if delivery.channel == "payment":
        return "check" if delivery.state == "retrying" else None
    return "retry" if delivery.state in RETRYABLE else None


def retry_now(session: Session, delivery_id: int, *, actor: Actor) -> Delivery:
    """Send a failed or dead delivery again, under a new message (its own job id)."""
    delivery = get_delivery(session, delivery_id)
    if delivery.channel == "payment":
        raise Conflict("A payment is not sent again: its buyer pays again from the item's page.")
    if delivery.state not in RETRYABLE:
        raise Conflict(
            f"Only failed or dead deliveries can be retried; this one is {delivery.state}."
        )
    previous = session.get(OutboxMessage, delivery.message_id) if delivery.message_id else None
    if previous is None:
        raise Conflict("This delivery's message is gone; it cannot be sent again.")
    message = add_message(session, previous.kind, dict(previous.payload))
    delivery.message_id, delivery.state = message.id, "pending"
    delivery.next_retry_at = None
    resolve_dead(previous, message.id)
    session.flush()
    return delivery


def resolve_dead(previous: OutboxMessage, replacement_id: int) -> None:
    """A dead letter sent again under a new message is no longer dead (the jobs page
    stops listing it); its last error says where it went."""
    if previous.dead_at is not None:
        previous.dead_at = None
        note = f"retried as message {replacement_id}; "
        previous.last_error = (note + (previous.last_error or ""))[:500]


def list_deliveries(session: Session, query: ListQuery, seek: Seek | None = None) -> Page[Delivery]:
    """One page of the ledger, newest first."""
    return DeliveryRepository(session).list(query, seek=seek)
