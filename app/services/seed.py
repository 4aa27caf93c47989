"""Demo data: one account per role and many items, loaded in bulk.

Items go in with COPY on PostgreSQL and executemany on SQLite, so a million
rows load in seconds rather than one ORM object at a time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.models.item import ITEM_STATUSES, Item
from app.models.user import User
from app.repositories.items import ItemRepository
from app.repositories.users import UserRepository
from app.services.users import create_user

DEMO_PASSWORD = "demo-password"
DEMO_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("admin@example.com", "Ada Admin", "admin"),
    ("user@example.com", "Uma User", "user"),
    ("guest@example.com", "Gus Guest", "guest"),
)

_ADJECTIVES = (
    "Amber",
    "Brisk",
    "Cobalt",
    "Dusky",
    "Eager",
    "Fuzzy",
    "Golden",
    "Hidden",
    "Ivory",
    "Jolly",
    "Kinetic",
    "Lunar",
    "Misty",
    "Nimble",
    "Olive",
    "Polar",
    "Quiet",
    "Rustic",
    "Silver",
    "Tidy",
    "Urban",
    "Vivid",
    "Woolly",
    "Zesty",
)
_NOUNS = (
    "Anchor",
    "Beacon",
    "Compass",
    "Drum",
    "Easel",
    "Falcon",
    "Globe",
    "Harbor",
    "Island",
    "Jigsaw",
    "Kettle",
    "Lantern",
    "Mosaic",
    "Notebook",
    "Orchard",
    "Pillow",
    "Quill",
    "Rocket",
    "Saddle",
    "Teapot",
    "Umbrella",
    "Violin",
    "Whistle",
    "Yarn",
)
_BATCH = 10_000


@dataclass(frozen=True)
class SeedReport:
    """What a seed run created."""

    users_created: int
    items_created: int


def ensure_demo_accounts(session: Session, *, iterations: int) -> int:
    """Create the three demo accounts if missing; returns how many were created."""
    repo = UserRepository(session)
    created = 0
    for email, name, role in DEMO_ACCOUNTS:
        if repo.by_email(email) is None:
            create_user(
                session,
                email=email,
                name=name,
                role=role,
                password=DEMO_PASSWORD,
                iterations=iterations,
            )
            created += 1
    return created


def ensure_extra_users(session: Session, count: int, *, iterations: int) -> int:
    """Top up `demo.userN@example.com` accounts (no password) until `count` exist."""
    repo = UserRepository(session)
    created = 0
    for n in range(1, count + 1):
        email = f"demo.user{n}@example.com"
        if repo.by_email(email) is None:
            create_user(
                session, email=email, name=f"Demo User {n}", role="user", iterations=iterations
            )
            created += 1
    return created


def item_rows(count: int, owner_ids: list[int], *, seed: int = 42) -> Iterator[dict[str, object]]:
    """Deterministic, varied item rows for demos and benchmarks."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(count):
        created = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 700))
        yield {
            "owner_id": owner_ids[n % len(owner_ids)],
            "name": f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {n + 1}",
            "description": f"Demo item number {n + 1}.",
            "status": ITEM_STATUSES[rng.randrange(len(ITEM_STATUSES))],
            "price": Decimal(rng.randrange(100, 500_000)) / 100,
            "created_at": created,
            "updated_at": created,
        }


def bulk_insert_items(
    session: Session,
    rows: Iterator[dict[str, object]],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert rows fast: COPY on PostgreSQL, batched executemany elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return _copy_items(session, rows, progress)
    total = 0
    batch: list[dict[str, object]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            session.execute(insert(Item), batch)
            total += len(batch)
            batch.clear()
            if progress:
                progress(total)
    if batch:
        session.execute(insert(Item), batch)
        total += len(batch)
        if progress:
            progress(total)
    return total


def _copy_items(
    session: Session, rows: Iterator[dict[str, object]], progress: Callable[[int], None] | None
) -> int:
    columns = ("owner_id", "name", "description", "status", "price", "created_at", "updated_at")
    dbapi = session.connection().connection.dbapi_connection
    total = 0
    with dbapi.cursor() as cur:  # type: ignore[union-attr]
        sql = f"COPY item ({', '.join(columns)}) FROM STDIN"
        with cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in columns))
                total += 1
                if progress and total % _BATCH == 0:
                    progress(total)
    if progress:
        progress(total)
    return total


def seed_demo(
    session: Session,
    *,
    users: int,
    items: int,
    iterations: int,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Idempotent: creates missing accounts, and items only up to `items` in total."""
    created_users = ensure_demo_accounts(session, iterations=iterations)
    created_users += ensure_extra_users(session, users, iterations=iterations)
    have = ItemRepository(session).count_all()
    missing = max(0, items - have)
    if missing == 0:
        return SeedReport(created_users, 0)
    owners = list(session.scalars(select(User.id).where(User.role != "guest").order_by(User.id)))
    inserted = bulk_insert_items(session, item_rows(missing, owners, seed=42 + have), progress)
    return SeedReport(created_users, inserted)
