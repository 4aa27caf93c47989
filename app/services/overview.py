"""The figures the landing page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.cache import cached
from app.models.item import Item
from app.repositories.users import UserRepository


@dataclass(frozen=True)
class Overview:
    """Totals and the newest items."""

    users: int
    items: int
    items_by_status: dict[str, int]
    recent: list[Item]


@cached(
    ttl=timedelta(minutes=10), key_prefix="overview:counts", tags=("items",), ignore=("session",)
)
def _items_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Item.status, func.count()).group_by(Item.status)).all()
    return {status: int(count) for status, count in rows}


@cached(
    ttl=timedelta(minutes=10), key_prefix="overview:users", tags=("users",), ignore=("session",)
)
def _user_count(session: Session) -> int:
    return UserRepository(session).count_all()


def overview(session: Session) -> Overview:
    """The landing page's numbers (cached, dropped by item and user changes) and newest items."""
    by_status = _items_by_status(session)
    recent = list(
        session.scalars(select(Item).order_by(Item.created_at.desc(), Item.id.desc()).limit(8))
    )
    return Overview(
        users=_user_count(session),
        items=sum(by_status.values()),
        items_by_status=by_status,
        recent=recent,
    )
