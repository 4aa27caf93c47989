"""Who a session or token belongs to, cached: the lookup every signed-in request makes.

The cache holds a plain snapshot of the account (no ORM state), tagged
`user:<id>`; every USER_* event drops it (app/services/invalidation.py), everywhere. Pages
read the snapshot; code that changes the account loads the real row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, configure_mappers

from app.core.cache import cached
from app.models.user import User
from app.repositories.users import UserRepository

SNAPSHOT_FIELDS = (
    "id",
    "email",
    "name",
    "role",
    "is_active",
    "auth_epoch",
    "password_changed_at",
    "last_login_at",
    "created_at",
    "updated_at",
)


def _tags(session: Session, user_id: int) -> list[str]:
    return [f"user:{user_id}", "users"]


@cached(ttl=timedelta(seconds=60), key_prefix="users:identity", tags=_tags, ignore=("session",))
def _snapshot(session: Session, user_id: int) -> dict[str, Any] | None:
    user = UserRepository(session).get(user_id)
    if user is None:
        return None
    return {name: getattr(user, name) for name in SNAPSHOT_FIELDS}


def identity(session: Session, user_id: int) -> User | None:
    """A detached User built from the cached snapshot (read-only use).

    Its values go straight into the instance's dict, as a load from the database puts
    them: the constructor would run an attribute event per field, on every request.
    """
    data = _snapshot(session, user_id)
    if data is None:
        return None
    user = _blank_user()
    user.__dict__.update((k, v) for k, v in data.items() if k in SNAPSHOT_FIELDS)
    return user


def _blank_user() -> User:
    """A User with no values, as SQLAlchemy makes one before loading a row into it. The
    mappers must be configured first: a worker's first request may find the snapshot in
    Redis and run no query, the step that would otherwise configure them."""
    mapper = User.__mapper__
    if not mapper.configured:
        configure_mappers()
    user: User = mapper.class_manager.new_instance()
    return user


def issued_before(user: User, issued_at: int) -> bool:
    """True when a credential issued at `issued_at` predates the last password change."""
    changed: datetime | None = user.password_changed_at
    return changed is not None and issued_at < int(changed.timestamp())
