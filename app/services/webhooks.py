"""Outgoing webhooks: endpoints, the messages they are owed, attempts and the retry schedule.

An endpoint subscribes to event types; each matching event becomes a
WebhookMessage (its id is the `webhook-id` receivers dedupe by, the same on every
attempt and replay), a ledger entry, and an outbox message that a task delivers.
The schedule is Standard Webhooks': at once, then 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h (with jitter), then the message has failed. 429/503 with Retry-After
wait at least that long; 410 Gone disables the endpoint; an endpoint that failed
everything for 5 days is disabled and its admins are emailed. Every function here
takes `now`, so the schedule is tested without waiting.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import AwareDatetime, Field, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.events import SYSTEM, Actor, Event, EventType, publish
from app.core.listing import Page
from app.core.metrics import WEBHOOK_ENDPOINTS_DISABLED
from app.core.netguard import ForbiddenTarget, Rules
from app.errors import Conflict, NotFound, ValidationFailed
from app.models.base import MAX_ID
from app.models.messaging import Delivery
from app.models.user import User
from app.models.webhooks import (
    MAX_DESCRIPTION,
    MAX_URL,
    WEBHOOK_EVENTS,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from app.services.outbox import add_message, queue_email
from app.services.validation import OneOf, PatchModel, StrictModel, Text, validate
from app.services.webhook_payloads import TestData, event_data

SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)  # seconds before each attempt
JITTER = 0.1
ROTATION_GRACE = timedelta(hours=24)
DISABLE_AFTER = timedelta(days=5)
MAX_BODY = 20_000
MAX_REPLAY_WINDOW = timedelta(days=31)
TEST_EVENT = "webhook.test"

E = TypeVar("E", "EndpointCreate", "EndpointPatch")
EventName = Annotated[str, OneOf(WEBHOOK_EVENTS, label="Event")]
Url = Annotated[
    str,
    Text(MAX_URL, required="Enter the URL to send events to."),
    Field(
        json_schema_extra={"format": "uri"},
        description="https (http only where WEBHOOK_ALLOW_HTTP is on); hosts on private, "
        "loopback, link-local or metadata networks are refused unless "
        "WEBHOOK_ALLOWED_NETWORKS covers them.",
    ),
]


class EndpointCreate(StrictModel):
    """A new endpoint: where, which events, and a note for the people who run it."""

    url: Url
    events: list[EventName] = Field(min_length=1)
    description: Annotated[str, Text(MAX_DESCRIPTION)] = ""


class EndpointPatch(PatchModel):
    """Change some fields of an endpoint."""

    url: Url | None = None
    events: list[EventName] | None = Field(default=None, min_length=1)
    description: Annotated[str, Text(MAX_DESCRIPTION)] | None = None
    enabled: bool | None = None


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as Standard Webhooks receivers expect."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def checked_url(url: str, rules: Rules) -> str:
    """The URL if outgoing requests may go there; ValidationFailed on `url` otherwise."""
    try:
        rules.check(url)
    except ForbiddenTarget as exc:
        raise ValidationFailed(fields={"url": str(exc)}) from None
    return url.strip()


def validate_endpoint(model: type[E], data: Mapping[str, Any], rules: Rules) -> E:
    """Parse an endpoint form or body; a URL that may not be called is named in the same
    answer as the other fields' errors, not one round trip later."""
    errors: dict[str, str] = {}
    try:
        fields = validate(model, data)
    except ValidationFailed as exc:
        errors = dict(exc.fields)
    url = data.get("url")
    if isinstance(url, str) and url.strip() and "url" not in errors:
        try:
            checked_url(url, rules)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(fields=errors)
    return fields


# --- endpoints ---------------------------------------------------------------------------


def create_endpoint(
    session: Session, fields: EndpointCreate, rules: Rules, *, actor: Actor
) -> WebhookEndpoint:
    """Register an endpoint; its secret is shown once, to whoever created it."""
    endpoint = WebhookEndpoint(
        url=checked_url(fields.url, rules),
        events=list(dict.fromkeys(fields.events)),
        description=fields.description,
        secret=new_secret(),
        created_by=actor.user_id,
    )
    session.add(endpoint)
    session.flush()
    _announce(session, EventType.WEBHOOK_ENDPOINT_CREATED, endpoint, actor, events=endpoint.events)
    return endpoint


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    changes: EndpointPatch,
    rules: Rules,
    *,
    actor: Actor,
) -> WebhookEndpoint:
    """Change the given fields; enabling again clears the failure run and its reason."""
    values = changes.model_dump(exclude_unset=True)
    changed = [k for k, v in values.items() if getattr(endpoint, k) != v]
    if "url" in values:
        endpoint.url = checked_url(values["url"], rules)
    if "events" in values:
        endpoint.events = list(dict.fromkeys(values["events"]))
    if "description" in values:
        endpoint.description = values["description"]
    if values.get("enabled") is True and not endpoint.enabled:
        endpoint.failing_since = endpoint.disabled_reason = None
    if "enabled" in values:
        endpoint.enabled = values["enabled"]
    session.flush()
    if changed:
        _announce(session, EventType.WEBHOOK_ENDPOINT_UPDATED, endpoint, actor, fields=changed)
    return endpoint


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, *, now: datetime, actor: Actor
) -> str:
    """A new secret; the old one keeps signing beside it for 24 hours."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_GRACE
    endpoint.secret = new_secret()
    session.flush()
    _announce(session, EventType.WEBHOOK_SECRET_ROTATED, endpoint, actor)
    return endpoint.secret


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    """The secrets to sign with now: the current one, and the previous during its grace."""
    secrets_ = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets_.append(endpoint.previous_secret)
    return secrets_


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    found = session.get(WebhookEndpoint, endpoint_id) if 1 <= endpoint_id <= MAX_ID else None
    if found is None:
        raise NotFound("No such webhook endpoint.")
    return found


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def delete_endpoint(session: Session, endpoint: WebhookEndpoint, *, actor: Actor) -> None:
    _announce(session, EventType.WEBHOOK_ENDPOINT_DELETED, endpoint, actor)
    session.delete(endpoint)
    session.flush()


def _announce(
    session: Session, kind: EventType, endpoint: WebhookEndpoint, actor: Actor, **extra: Any
) -> None:
    """Endpoint changes go to the audit log: a webhook sends data out of the app."""
    publish(session, kind, subject=("webhook", endpoint.id), actor=actor, url=endpoint.url, **extra)


# --- messages ----------------------------------------------------------------------------


def _message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def owe(
    session: Session,
    endpoint: WebhookEndpoint,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
) -> WebhookMessage:
    """Owe one endpoint one event: the message (its body fixed now), a ledger entry and the
    outbox message that delivers it."""
    body = json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        separators=(",", ":"),
        default=str,
    )
    if len(body) > MAX_BODY:
        body = json.dumps(
            {"type": event_type, "timestamp": now.isoformat(), "data": _trimmed(data)}
        )
    message = WebhookMessage(
        id=_message_id(), endpoint_id=endpoint.id, event_type=event_type, body=body
    )
    delivery = Delivery(
        channel="webhook",
        kind=event_type,
        recipient=endpoint.url[:500],
        summary=f"Webhook endpoint {endpoint.id}",
    )
    session.add_all([message, delivery])
    session.flush()
    message.delivery_id = delivery.id
    _send(session, message, delivery, available_at=now)
    return message


def _send(
    session: Session, message: WebhookMessage, delivery: Delivery, *, available_at: datetime
) -> None:
    outbox = add_message(
        session, "webhook.deliver", {"webhook_message_id": message.id, "delivery_id": delivery.id}
    )
    outbox.available_at = available_at
    delivery.message_id = outbox.id
    session.flush()


def _trimmed(data: dict[str, Any]) -> dict[str, Any]:
    """Keep the identifying fields of a payload that would be over 20 kB."""
    return {
        k: v for k, v in data.items() if k in ("id", "name", "status", "bulk", "count", "action")
    }


def send_test(session: Session, endpoint: WebhookEndpoint, *, now: datetime) -> MessageRecord:
    """A `webhook.test` event to this endpoint, whatever it subscribes to."""
    message = owe(
        session, endpoint, TEST_EVENT, TestData(endpoint_id=endpoint.id).model_dump(), now=now
    )
    return message_record(session, endpoint, message.delivery_id or 0)


def resend(
    session: Session, endpoint: WebhookEndpoint, delivery_id: int, *, now: datetime
) -> MessageRecord:
    """Send one of this endpoint's messages again, with its original webhook-id."""
    record = message_record(session, endpoint, delivery_id)
    if record.delivery.state in ("pending", "retrying"):
        raise Conflict("This delivery is still being attempted.")
    record.delivery.state, record.delivery.next_retry_at = "pending", None
    _send(session, record.message, record.delivery, available_at=now)
    return record


class ReplayWindow(StrictModel):
    """Which of an endpoint's messages to send again: those created in [since, until]
    (`until` not before `since`, at most 31 days apart)."""

    since: AwareDatetime
    until: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ReplayWindow:
        if self.until < self.since:
            raise PydanticCustomError("window", "The window must end after it starts.")
        if self.until - self.since > MAX_REPLAY_WINDOW:
            raise PydanticCustomError("window", "Replay at most 31 days at a time.")
        return self


def replay(
    session: Session, endpoint: WebhookEndpoint, window: ReplayWindow, *, now: datetime
) -> int:
    """Send again every message of this endpoint created in the window, each with its own
    webhook-id, skipping those still being attempted; returns how many were queued."""
    rows = session.execute(
        select(WebhookMessage, Delivery)
        .join(Delivery, Delivery.id == WebhookMessage.delivery_id)
        .where(
            WebhookMessage.endpoint_id == endpoint.id,
            WebhookMessage.created_at >= window.since,
            WebhookMessage.created_at <= window.until,
            Delivery.state.not_in(("pending", "retrying")),
        )
        .order_by(WebhookMessage.created_at)
    ).all()
    for message, delivery in rows:
        delivery.state, delivery.next_retry_at = "pending", None
        _send(session, message, delivery, available_at=now)
    return len(rows)


@dataclass(frozen=True)
class MessageRecord:
    """One message owed to an endpoint, as its page and the API show it."""

    message: WebhookMessage
    delivery: Delivery
    attempts: list[WebhookAttempt]


def message_record(session: Session, endpoint: WebhookEndpoint, delivery_id: int) -> MessageRecord:
    """One of this endpoint's messages by its ledger id; NotFound for any other."""
    row = (
        session.execute(
            select(WebhookMessage, Delivery)
            .join(Delivery, Delivery.id == WebhookMessage.delivery_id)
            .where(WebhookMessage.endpoint_id == endpoint.id, Delivery.id == delivery_id)
        ).first()
        if 1 <= delivery_id <= MAX_ID
        else None
    )
    if row is None:
        raise NotFound("No such delivery for this endpoint.")
    return _with_attempts(session, [tuple(row)])[0]


def messages_page(
    session: Session, endpoint: WebhookEndpoint, *, page: int, per_page: int
) -> Page[MessageRecord]:
    """The endpoint's messages, newest first, each with its attempts (three queries)."""
    base = select(WebhookMessage, Delivery).join(
        Delivery, Delivery.id == WebhookMessage.delivery_id
    )
    base = base.where(WebhookMessage.endpoint_id == endpoint.id)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(WebhookMessage.created_at.desc(), Delivery.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Page(_with_attempts(session, [tuple(r) for r in rows]), page, per_page, total)


def endpoints_of(session: Session, delivery_ids: Sequence[int]) -> dict[int, int]:
    """The endpoint of each webhook delivery among these ledger ids (the ledger links them)."""
    if not delivery_ids:
        return {}
    rows = session.execute(
        select(WebhookMessage.delivery_id, WebhookMessage.endpoint_id).where(
            WebhookMessage.delivery_id.in_(delivery_ids)
        )
    )
    return {delivery_id: endpoint_id for delivery_id, endpoint_id in rows if delivery_id}


def _with_attempts(session: Session, rows: list[tuple[Any, ...]]) -> list[MessageRecord]:
    by_message: dict[str, list[WebhookAttempt]] = {m.id: [] for m, _ in rows}
    if by_message:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id.in_(by_message))
            .order_by(WebhookAttempt.id)
        ):
            by_message[attempt.message_id].append(attempt)
    return [MessageRecord(m, d, by_message[m.id]) for m, d in rows]


# --- events to messages ------------------------------------------------------------------


class WebhookHandler:
    """Owes every enabled endpoint subscribed to an event type that event."""

    name = "webhooks"
    handles = frozenset(EventType(name) for name in WEBHOOK_EVENTS)

    def handle(self, event: Event, session: Session | None) -> None:
        if session is None:
            raise RuntimeError(f"{event.type} was published outside a transaction: no webhooks")
        wanted = [
            e
            for e in session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
            )
            if event.type.value in (e.events or [])
        ]
        if not wanted:
            return
        data = event_data(session, event)
        for endpoint in wanted:
            owe(session, endpoint, event.type.value, data, now=event.occurred_at)


# --- attempts and the schedule -----------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """What a delivery task needs to make one attempt."""

    message_id: str
    delivery_id: int
    url: str
    body: str
    secrets: list[str]
    attempt: int  # 1 for the first


def start_attempt(
    session: Session, webhook_message_id: str, delivery_id: int, *, now: datetime
) -> Due | None:
    """The attempt to make now, counted; None when it was delivered already or the endpoint
    is gone or disabled (then the delivery is marked failed with why)."""
    message = session.get(WebhookMessage, webhook_message_id)
    delivery = session.get(Delivery, delivery_id)
    if message is None or delivery is None or delivery.state == "sent":
        return None
    endpoint = session.get(WebhookEndpoint, message.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        delivery.state, delivery.last_error = "failed", "the endpoint is disabled"
        session.flush()
        return None
    delivery.attempts += 1
    session.flush()
    return Due(
        message.id,
        delivery.id,
        endpoint.url,
        message.body,
        signing_secrets(endpoint, now=now),
        delivery.attempts,
    )


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended: an HTTP status (with the first 2 kB and headers), or an error."""

    status: int | None = None
    excerpt: str = ""
    headers: dict[str, str] | None = None
    error: str | None = None
    duration_ms: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def record_attempt(
    session: Session, due: Due, outcome: Outcome, *, now: datetime, rng: random.Random | None = None
) -> str:
    """Store the attempt and decide what happens next; returns "sent", "retrying",
    "failed" or "disabled"."""
    session.add(
        WebhookAttempt(
            message_id=due.message_id,
            attempted_at=now,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status,
            response_excerpt=outcome.excerpt[:2048],
            error=(outcome.error or "")[:500] or None,
            headers={
                k: v
                for k, v in (outcome.headers or {}).items()
                if k.lower() in ("retry-after", "content-type")
            },
        )
    )
    delivery = session.get(Delivery, due.delivery_id)
    message = session.get(WebhookMessage, due.message_id)
    endpoint = session.get(WebhookEndpoint, message.endpoint_id) if message else None
    if delivery is None or endpoint is None:
        return "failed"
    if outcome.succeeded:
        delivery.state, delivery.sent_at, delivery.last_error = "sent", now, None
        delivery.next_retry_at = None
        endpoint.failing_since = None
        session.flush()
        return "sent"
    delivery.last_error = _describe(outcome)
    if outcome.status == 410:
        _disable(session, endpoint, "the endpoint answered 410 Gone", now=now)
        delivery.state, delivery.next_retry_at = "failed", None
        session.flush()
        return "disabled"
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    if now - endpoint.failing_since >= DISABLE_AFTER:
        _disable(session, endpoint, "every delivery failed for 5 days", now=now)
        delivery.state, delivery.next_retry_at = "failed", None
        session.flush()
        return "disabled"
    if due.attempt >= len(SCHEDULE):
        delivery.state, delivery.next_retry_at = "failed", None
        session.flush()
        return "failed"
    delay = _jittered(SCHEDULE[due.attempt], rng)
    wait = retry_after(outcome)
    if wait is not None:
        delay = max(delay, wait)
    next_at = now + timedelta(seconds=delay)
    delivery.state, delivery.next_retry_at = "retrying", next_at
    if message is not None:
        _send(session, message, delivery, available_at=next_at)
    return "retrying"


def _jittered(seconds: int, rng: random.Random | None) -> float:
    if seconds == 0:
        return 0.0
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return seconds * spread


def retry_after(outcome: Outcome) -> float | None:
    """Seconds a 429 or 503 asked us to wait (Retry-After in seconds), or None."""
    if outcome.status not in (429, 503) or not outcome.headers:
        return None
    raw = next((v for k, v in outcome.headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _describe(outcome: Outcome) -> str:
    if outcome.error:
        return outcome.error
    if outcome.status is not None and 300 <= outcome.status < 400:
        return f"HTTP {outcome.status}: redirects are not followed"
    return f"HTTP {outcome.status}"


def _disable(session: Session, endpoint: WebhookEndpoint, reason: str, *, now: datetime) -> None:
    """Stop sending to an endpoint and tell its admins (once, when it turns off)."""
    if not endpoint.enabled:
        return
    endpoint.enabled, endpoint.disabled_reason = False, reason
    session.flush()
    _announce(session, EventType.WEBHOOK_ENDPOINT_DISABLED, endpoint, SYSTEM, reason=reason)
    WEBHOOK_ENDPOINTS_DISABLED.labels(reason="gone" if "410" in reason else "failing").inc()
    admins = session.scalars(select(User).where(User.role == "admin", User.is_active.is_(True)))
    for admin in admins:
        queue_email(
            session,
            "webhook_disabled",
            to=admin.email,
            summary=f"Webhook endpoint {endpoint.id} was disabled",
            user_id=admin.id,
            endpoint_id=endpoint.id,
            url=endpoint.url,
            reason=reason,
            occurred_at=now.isoformat(),
        )
