"""The figures the landing page shows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.item import Item
from app.repositories.users import UserRepository


@dataclass(frozen=True)
class Overview:
    """Totals and the newest items."""

    users: int
    items: int
    items_by_status: dict[str, int]
    recent: list[Item]


def overview(session: Session) -> Overview:
    """Gather the landing page's numbers in a few cheap queries."""
    rows = session.execute(select(Item.status, func.count()).group_by(Item.status)).all()
    by_status = {status: int(count) for status, count in rows}
    recent = list(
        session.scalars(select(Item).order_by(Item.created_at.desc(), Item.id.desc()).limit(8))
    )
    return Overview(
        users=UserRepository(session).count_all(),
        items=sum(by_status.values()),
        items_by_status=by_status,
        recent=recent,
    )
