"""Wire the two-tier cache into the app: Flask-Caching on top, domain events below.

Cached reads (item totals, the signed-in user, the dashboard) carry tags. Two
things mark them stale: a handler on the EventBus (covers bulk SQL that loads
no rows) and a session hook that notices any ORM write to users or items. The
tags are collected on the session and dropped once, after the commit, so no
reader keeps a value from before it and a 100-row batch costs one
invalidation, not 100. Invalidations reach every process (pub/sub).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_caching import Cache as FlaskCaching
from sqlalchemy import event as sa_event
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.core.cache.flask import TwoTierCache, get_cache
from app.core.events import Event, EventBus, EventType
from app.extensions import db
from app.settings import Settings

log = logging.getLogger(__name__)

flask_caching = FlaskCaching()
STALE_TAGS = "stale_cache_tags"  # session.info key: tags to drop after the commit

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


SHOWN_USER_FIELDS = frozenset({"name", "email"})  # what other people's pages show of a user


def tags_for(event: Event) -> list[str]:
    """Which cache tags an event makes stale.

    `user-names` is narrower than `users`: it marks what shows a user to others (owner
    names in tables), so sign-ins and password changes leave those pages cached. Deleting
    a user deletes their items too (ON DELETE CASCADE, no ORM rows), hence `items`.
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
    """Drops cached reads when the data behind them changes."""

    name = "cache-invalidation"
    handles = ITEM_EVENTS | USER_EVENTS

    def handle(self, event: Event) -> None:
        tags = tags_for(event)
        if not tags or not has_app_context():
            return
        session = db.session
        if session.in_transaction():  # dropped once, after the commit makes the change visible
            session.info.setdefault(STALE_TAGS, set()).update(tags)
            return
        get_cache().delete_tag(*tags)


def _orm_tags(session: Session) -> set[str]:
    """Tags made stale by the rows this flush wrote (any ORM write, with or without an event)."""
    from app.models.item import Item
    from app.models.user import User

    tags: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Item):
            tags.add("items")
        elif isinstance(obj, User):
            tags.update({"users", f"user:{obj.id}"})
            if obj in session.deleted:  # its items go with it (ON DELETE CASCADE)
                tags.update({"user-names", "items"})
            elif _shown_fields_changed(obj):  # a new user's fields count as changed
                tags.add("user-names")
    return tags


def _shown_fields_changed(user: object) -> bool:
    state = inspect(user)
    return any(state.attrs[name].history.has_changes() for name in SHOWN_USER_FIELDS)


def _after_flush(session: Session, _context: object) -> None:
    session.info.setdefault(STALE_TAGS, set()).update(_orm_tags(session))


def _after_commit(session: Session) -> None:
    tags = session.info.pop(STALE_TAGS, None)
    if tags and has_app_context() and "app_cache" in current_app.extensions:
        get_cache().delete_tag(*sorted(tags))


def _after_rollback(session: Session) -> None:
    session.info.pop(STALE_TAGS, None)


def watch_orm_writes() -> None:
    """Invalidate after commit whatever the ORM changed (idempotent, process-wide)."""
    if not sa_event.contains(Session, "after_flush", _after_flush):
        sa_event.listen(Session, "after_flush", _after_flush)
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_rollback", _after_rollback)


def init_caching(app: Flask, settings: Settings) -> None:
    """One cache configuration for our @cached and Flask-Caching alike."""
    app.config.update(
        CACHE_TYPE="app.core.cache.flask.FlaskCachingBackend",
        CACHE_REDIS_URL=settings.redis_url,
        CACHE_KEY_PREFIX=f"{settings.redis_key_prefix}:cache",
        CACHE_DEFAULT_TTL=settings.cache_default_ttl,
        CACHE_L1_MAX_ENTRIES=settings.cache_l1_max_entries,
    )
    TwoTierCache().init_app(app)
    flask_caching.init_app(app)
    EventBus.get_instance().subscribe(CacheInvalidationHandler())
    watch_orm_writes()


def cache_health(app: Flask) -> dict[str, Any]:
    """The cache's view of Redis, for /readyz."""
    return get_cache(app).health()
