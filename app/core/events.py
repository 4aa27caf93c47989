"""EventBus: in-process publish/subscribe that decouples a change from its side effects.

Services announce a change with `publish(session, kind, subject=..., actor=..., **payload)`
inside the transaction that makes it; handlers receive the event and that same
session, so what they write (an audit row; later an outbox row) commits or rolls
back with the change. A failing handler is logged and never breaks the publisher
or the other handlers.

Catalogue: type (subject): payload -> subscribers. Every event is counted by type
(`count_event`) and written to the audit log; the cache tags it drops follow.

- user.created (user): email, role, [source="import"] -> cache: users, user:<id>, user-names
- user.updated (user): fields (names changed), [role, is_active], [via="reset"]
  -> cache: users, user:<id>, and user-names when name or email changed
- user.deleted (user): email -> cache: users, user:<id>, user-names, items (theirs went too)
- user.login (user): - -> cache: users, user:<id>
- user.logout (user): [everywhere] -> cache: users, user:<id>
- user.login_failed (user, or none for an unknown email): reason, [actor_email]
- user.refresh_reused (user): family, ended (tokens revoked): a spent refresh token
  came back after its grace window, so that sign-in was ended
- user.password_reset_requested (user): - -> outbox: the reset email
- user.created also -> outbox: a welcome email (imports only when asked: welcome=True);
  user.updated with password -> a "password changed" notice, with email -> an
  "email changed" notice to the old address (payload old_email)
- item.created (item): name -> cache: items
- item.updated (item): fields; bulk (no id): bulk, action, count, ids or q and filters
  -> cache: items
- item.deleted (item): name; bulk as above -> cache: items
- item.* and user.created also -> webhooks: one message per subscribed endpoint
- webhook.endpoint_created / endpoint_updated (webhook): url, events, [fields]
- webhook.endpoint_deleted (webhook): url; webhook.secret_rotated (webhook): -
- webhook.endpoint_disabled (webhook): reason (410 Gone or five days failing)
  -> outbox: an email to every admin
- payment.succeeded / payment.failed (payment): amount, currency, provider, status, [error]
  -> outbox: a receipt email (succeeded); webhooks
- payment.refunded (payment): amount, currency, provider, status, refunded (this refund)
  -> outbox: a refund email; webhooks

The seed's CACHE_INVALIDATED, ERROR_OCCURRED and AUDIT_LOG are not events here:
the cache counts its invalidations in `app_cache_invalidations_total`, errors are
counted by the request metrics and logged, and every audited event writes its own row.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


class EventType(StrEnum):
    """Every event the system publishes (see the catalogue above)."""

    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    USER_LOGIN = "user.login"
    USER_LOGOUT = "user.logout"
    USER_LOGIN_FAILED = "user.login_failed"
    USER_REFRESH_REUSED = "user.refresh_reused"
    PASSWORD_RESET_REQUESTED = "user.password_reset_requested"
    ITEM_CREATED = "item.created"
    ITEM_UPDATED = "item.updated"
    ITEM_DELETED = "item.deleted"
    WEBHOOK_ENDPOINT_CREATED = "webhook.endpoint_created"
    WEBHOOK_ENDPOINT_UPDATED = "webhook.endpoint_updated"
    WEBHOOK_ENDPOINT_DELETED = "webhook.endpoint_deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who is acting, for the audit: a user id and the client IP, both optional."""

    user_id: int | None = None
    ip: str | None = None


SYSTEM = Actor()
"""The actor of what the app does by itself (seeding, imports from the CLI)."""

Subject = tuple[str, object]
"""What an event is about: a kind and its id, e.g. ("item", 42); the id may be None."""


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened. `actor_id` and `ip` say who and from where, for the audit."""

    type: EventType
    payload: dict[str, Any] = field(default_factory=dict)
    actor_id: int | None = None
    ip: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def with_payload(self, **extra: Any) -> Event:
        """Return a copy with keys added to the payload (middleware enrich events this way)."""
        return replace(self, payload={**self.payload, **extra})


@runtime_checkable
class EventHandler(Protocol):
    """A subscriber. `handles` names the event types it wants; an empty set means all.

    `name` identifies the handler: subscribing a handler with a name already
    present replaces it, so building several apps in one process never doubles
    a side effect.
    """

    name: str
    handles: frozenset[EventType]

    def handle(self, event: Event, session: Session | None) -> Awaitable[None] | None:
        """React to `event`; `session` is the publisher's (None outside a transaction)."""
        ...


# A middleware receives the event and returns it (possibly changed) or None to drop it.
Middleware = Callable[[Event], Event | None]


class EventBus:
    """Process-wide bus: `EventBus.get_instance()` returns the singleton."""

    _instance: ClassVar[EventBus | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._handlers: dict[str, EventHandler] = {}
        self._middleware: list[Middleware] = []
        self._lock = threading.Lock()

    @classmethod
    def get_instance(cls) -> EventBus:
        """Return the process-wide bus, creating it on first use."""
        if cls._instance is None:
            with cls._instance_lock:
                if cls._instance is None:
                    cls._instance = cls()
        return cls._instance

    @classmethod
    def reset_instance(cls) -> None:
        """Forget the singleton (tests start each case with a clean bus)."""
        with cls._instance_lock:
            cls._instance = None

    def subscribe(self, handler: EventHandler) -> None:
        """Add a handler, replacing any earlier one with the same name."""
        with self._lock:
            self._handlers[handler.name] = handler

    def unsubscribe(self, name: str) -> None:
        """Remove the handler with this name, if any."""
        with self._lock:
            self._handlers.pop(name, None)

    def add_middleware(self, middleware: Middleware) -> None:
        """Append a preprocessing step; middleware runs in the order added."""
        with self._lock:
            self._middleware.append(middleware)

    @property
    def middleware(self) -> list[Middleware]:
        """The middleware, in the order it runs."""
        with self._lock:
            return list(self._middleware)

    @property
    def handlers(self) -> list[EventHandler]:
        """The subscribed handlers, in subscription order."""
        with self._lock:
            return list(self._handlers.values())

    async def publish(self, event: Event, session: Session | None = None) -> None:
        """Run middleware then every interested handler; awaits async handlers."""
        prepared = self._prepare(event)
        if prepared is None:
            return
        for handler in self._interested(prepared):
            try:
                result = handler.handle(prepared, session)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a handler must never break the publisher
                log.exception("event handler %s failed on %s", handler.name, prepared.type)

    def publish_sync(self, event: Event, session: Session | None = None) -> None:
        """Publish from synchronous code (services, CLI, jobs).

        Sync handlers run inline; async handlers run to completion on a private
        event loop, so the caller sees every side effect done when this returns.
        """
        prepared = self._prepare(event)
        if prepared is None:
            return
        for handler in self._interested(prepared):
            try:
                result = handler.handle(prepared, session)
                if inspect.isawaitable(result):
                    _run_coroutine(result)
            except Exception:  # a handler must never break the publisher
                log.exception("event handler %s failed on %s", handler.name, prepared.type)

    def _prepare(self, event: Event) -> Event | None:
        with self._lock:
            middleware = list(self._middleware)
        current: Event | None = event
        for step in middleware:
            try:
                current = step(current)  # type: ignore[arg-type]
            except Exception:
                log.exception(
                    "event middleware %r failed; event %s passed on unchanged", step, event.type
                )
                continue
            if current is None:
                return None
        return current

    def _interested(self, event: Event) -> Iterable[EventHandler]:
        return [h for h in self.handlers if not h.handles or event.type in h.handles]


def _run_coroutine(awaitable: Awaitable[None]) -> None:
    """Run an awaitable to completion from sync code, even inside a running loop."""

    async def wrapper() -> None:
        await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(wrapper())
        return
    # Called from inside a running loop (sync code under async): use a worker thread.
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(wrapper())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="eventbus-sync")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def publish(
    session: Session | None,
    kind: EventType,
    *,
    subject: Subject | None = None,
    actor: Actor = SYSTEM,
    **payload: Any,
) -> Event:
    """Announce a change inside the transaction that makes it; the one way services publish."""
    subject_type, subject_id = subject if subject is not None else (None, None)
    event = Event(
        type=kind,
        payload=payload,
        actor_id=actor.user_id,
        ip=actor.ip,
        subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id),
    )
    EventBus.get_instance().publish_sync(event, session)
    return event


@dataclass
class FunctionHandler:
    """Adapter that makes a plain function of the event an `EventHandler`."""

    name: str
    handles: frozenset[EventType]
    func: Callable[[Event], Awaitable[None] | None]

    def handle(self, event: Event, session: Session | None = None) -> Awaitable[None] | None:
        return self.func(event)
