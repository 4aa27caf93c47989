"""Which cached reads a change makes stale: the one place the staleness rules live.

Every change is announced by an event (app/core/events.py), so the rules are a
function of events. The tags are collected on the publisher's session and
dropped once, after its commit: no reader keeps a value from before the change,
a rolled-back change drops nothing, and a 100-row batch costs one invalidation,
not 100. The cache sends each drop to every process (Redis pub/sub).

Events cover every change the services make. A write made around them (a shell,
a script, a test) is caught too: each flush is read back as the events it
amounts to (`flushed_events`), so the same rules apply and none are written twice.

Tags: `items` (item rows and totals), `users` (anything about accounts),
`user:<id>` (one account's identity), `user-names` (what others see of a user:
owner names in tables; narrower than `users`, so sign-ins keep tables cached).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.core.cache import active_cache
from app.core.events import Event, EventType
from app.models.item import Item
from app.models.user import User

STALE_TAGS = "stale_cache_tags"  # session.info key: tags to drop after the commit
SHOWN_USER_FIELDS = frozenset({"name", "email"})  # what other people's pages show of a user
ITEM_EVENTS = frozenset({EventType.ITEM_CREATED, EventType.ITEM_UPDATED, EventType.ITEM_DELETED})
USER_EVENTS = frozenset(
    {
        EventType.USER_CREATED,
        EventType.USER_UPDATED,
        EventType.USER_DELETED,
        EventType.USER_LOGIN,
        EventType.USER_LOGOUT,
    }
)


def tags_for(event: Event) -> list[str]:
    """Which cache tags an event makes stale.

    Deleting a user deletes their items too (ON DELETE CASCADE, no ORM rows), hence
    `items`; a sign-in changes the account (last sign-in, a rehashed password) but
    nothing others see, hence no `user-names`.
    """
    if event.type in ITEM_EVENTS:
        return ["items"]
    if event.type not in USER_EVENTS:
        return []
    tags = ["users"]
    if event.subject_id:
        tags.append(f"user:{event.subject_id}")
    if event.type in (EventType.USER_CREATED, EventType.USER_DELETED):
        tags.append("user-names")
    if event.type == EventType.USER_DELETED:
        tags.append("items")
    if event.type == EventType.USER_UPDATED and SHOWN_USER_FIELDS & set(
        event.payload.get("fields") or ()
    ):
        tags.append("user-names")
    return tags


class CacheInvalidationHandler:
    """Marks the cached reads an event makes stale, to be dropped after the commit."""

    name = "cache-invalidation"
    handles = ITEM_EVENTS | USER_EVENTS

    def handle(self, event: Event, session: Session | None) -> None:
        tags = tags_for(event)
        if not tags:
            return
        if session is not None and session.in_transaction():
            mark_stale(session, *tags)
        else:
            drop(tags)


def mark_stale(session: Session, *tags: str) -> None:
    """Drop these tags once `session` commits (and not at all if it rolls back)."""
    session.info.setdefault(STALE_TAGS, set()).update(tags)


def drop(tags: Iterable[str]) -> None:
    """Drop these tags from the current cache, everywhere (no cache: nothing to drop)."""
    cache = active_cache()
    if cache is not None:
        cache.delete_tag(*sorted(tags))


_ROW_EVENTS: dict[type[Any], tuple[str, dict[str, EventType]]] = {
    User: (
        "user",
        {
            "new": EventType.USER_CREATED,
            "dirty": EventType.USER_UPDATED,
            "deleted": EventType.USER_DELETED,
        },
    ),
    Item: (
        "item",
        {
            "new": EventType.ITEM_CREATED,
            "dirty": EventType.ITEM_UPDATED,
            "deleted": EventType.ITEM_DELETED,
        },
    ),
}


def flushed_events(session: Session) -> Iterator[Event]:
    """The events a flush amounts to: each user or item row created, changed or deleted."""
    for state, rows in (
        ("new", session.new),
        ("dirty", session.dirty),
        ("deleted", session.deleted),
    ):
        for obj in rows:
            known = _ROW_EVENTS.get(type(obj))
            if known is None:
                continue
            subject, kinds = known
            payload: dict[str, Any] = {}
            if state == "dirty":
                changed = inspect(obj).attrs
                payload["fields"] = [a.key for a in changed if a.history.has_changes()]
            yield Event(
                type=kinds[state], subject_type=subject, subject_id=str(obj.id), payload=payload
            )


def _after_flush(session: Session, _context: object) -> None:
    tags = {tag for event in flushed_events(session) for tag in tags_for(event)}
    if tags:
        mark_stale(session, *tags)


def _after_commit(session: Session) -> None:
    tags = session.info.pop(STALE_TAGS, None)
    if tags:
        drop(tags)


def _after_rollback(session: Session) -> None:
    session.info.pop(STALE_TAGS, None)


def watch_commits() -> None:
    """Collect tags from every flush, drop them after each commit, forget them on rollback
    (once per process)."""
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_flush", _after_flush)
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_rollback", _after_rollback)
