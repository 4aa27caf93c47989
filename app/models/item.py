"""Items: the records users own and the main table of the app."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from sqlalchemy import CheckConstraint, Computed, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.listing import Listing
from app.models.base import Base, TimestampMixin
from app.models.user import User

ItemStatus = Literal["draft", "active", "archived"]
ITEM_STATUSES: tuple[ItemStatus, ...] = get_args(ItemStatus)
MAX_NAME = 200
MAX_DESCRIPTION = 5000

ITEM_LISTING = Listing(
    sortable={
        "id": int,
        "name": str,
        "price": Decimal,
        "status": str,
        "created_at": datetime,
        "updated_at": datetime,
    },
    default_sort="created_at",
    default_direction="desc",
    filters={"status": ITEM_STATUSES},
    search=("name_key",),  # lower(name): see Item.name_key
    search_folded=True,
)
# The sort indexes carry name_key, so a search reads matches off the index in sort order
# without visiting the table (an index-only scan; see BaseRepository._shaped).
_SEARCHED = ["name_key"]


class Item(TimestampMixin, Base):
    """Something a user owns, with a price and a status."""

    __tablename__ = "item"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'archived')", name="status_known"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        # (column, id) indexes back every sortable column with its tie-breaker.
        Index("ix_item_name_id", "name", "id", postgresql_include=_SEARCHED),
        Index("ix_item_price_id", "price", "id", postgresql_include=_SEARCHED),
        Index("ix_item_status_id", "status", "id", postgresql_include=_SEARCHED),
        Index("ix_item_created_at_id", "created_at", "id", postgresql_include=_SEARCHED),
        Index("ix_item_updated_at_id", "updated_at", "id", postgresql_include=_SEARCHED),
        Index("ix_item_owner_id_id", "owner_id", "id"),
        Index("ix_item_id_searched", "id", postgresql_include=_SEARCHED).ddl_if(
            dialect="postgresql"
        ),
        # A trigram index finds the matches of a rare term, and counts them, on PostgreSQL.
        Index(
            "ix_item_name_key_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(MAX_NAME), nullable=False)
    # What searches match: `name_key LIKE lower('%term%')` reads this stored copy, where
    # ILIKE would case-fold every row it tests (ten times dearer on PostgreSQL).
    name_key: Mapped[str] = mapped_column(
        String(MAX_NAME), Computed("lower(name)", persisted=True), nullable=False
    )
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False, default=Decimal("0"))

    owner: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"<Item {self.id} {self.name!r}>"
