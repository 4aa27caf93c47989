"""Demo data: one account per role and many items, loaded in bulk.

Items go in with COPY on PostgreSQL and executemany on SQLite, so a million
rows load in seconds rather than one ORM object at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar, cast

from sqlalchemy import Engine, Table, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from app.models.item import ITEM_STATUSES, Item
from app.models.user import User
from app.repositories.items import ItemRepository
from app.repositories.users import UserRepository
from app.services.invalidation import mark_stale
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
R = TypeVar("R")


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


_COLOURS = ("red", "blue", "green", "amber", "violet", "teal", "coral", "slate")
_EPOCH_DATE = date(2024, 1, 1)
_EPOCH = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
_SPAN_MINUTES = 60 * 24 * 700
_REBUILD_INDEXES_FROM = 100_000  # bigger loads drop secondary indexes and rebuild them once


def _parts(n: int) -> tuple[str, str, str, int, int]:
    """Name, description, status, price in cents and minutes after the epoch, for row n.

    A multiplicative hash of the row number stands in for a random generator:
    the same row number always gives the same row.
    """
    h = (n * 2654435761) & 0xFFFFFFFF
    noun = _NOUNS[(h >> 8) % len(_NOUNS)]
    return (
        f"{_ADJECTIVES[h % len(_ADJECTIVES)]} {noun} {n}",
        f"A {_COLOURS[(h >> 16) % len(_COLOURS)]} {noun.lower()}, demo item number {n}.",
        ITEM_STATUSES[(h >> 20) % len(ITEM_STATUSES)],
        100 + h % 499_900,
        (h >> 3) % _SPAN_MINUTES,
    )


def item_tuples(
    count: int, owner_ids: list[int], *, first: int = 1
) -> Iterator[tuple[object, ...]]:
    """Deterministic, varied rows (owner, name, description, status, price, created, updated)."""
    for n in range(first, first + count):
        name, description, status, cents, minutes = _parts(n)
        created = datetime.fromtimestamp(_EPOCH + 60 * minutes, UTC)
        price = Decimal(cents) / 100
        yield owner_ids[n % len(owner_ids)], name, description, status, price, created, created


def copy_lines(count: int, owner_ids: list[int], *, first: int = 1) -> Iterator[str]:
    """The same rows as item_tuples, already in COPY text format (no per-row objects)."""
    days = [(_EPOCH_DATE + timedelta(days=d)).isoformat() for d in range(_SPAN_MINUTES // 1440 + 1)]
    for n in range(first, first + count):
        name, description, status, cents, minutes = _parts(n)
        day, minute = divmod(minutes, 1440)
        stamp = f"{days[day]} {minute // 60:02d}:{minute % 60:02d}:00+00"
        owner = owner_ids[n % len(owner_ids)]
        price = f"{cents // 100}.{cents % 100:02d}"
        yield f"{owner}\t{name}\t{description}\t{status}\t{price}\t{stamp}\t{stamp}\n"


_COLUMNS = ("owner_id", "name", "description", "status", "price", "created_at", "updated_at")


def bulk_insert_items(
    session: Session,
    owner_ids: list[int],
    *,
    count: int,
    first: int = 1,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert generated rows fast: COPY on PostgreSQL, batched executemany elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        lines = copy_lines(count, owner_ids, first=first)
        if count >= _REBUILD_INDEXES_FROM:
            with _bulk_load_mode(session):
                return _copy_items(session, lines, progress)
        return _copy_items(session, lines, progress)
    total = 0
    for batch in _batches(item_tuples(count, owner_ids, first=first), _BATCH):
        session.execute(insert(Item), [dict(zip(_COLUMNS, row, strict=True)) for row in batch])
        total += len(batch)
        if progress:
            progress(total)
    return total


def _batches(rows: Iterator[R], size: int) -> Iterator[list[R]]:
    batch: list[R] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _bulk_load_mode(session: Session) -> Iterator[None]:
    """Drop the item table's secondary indexes and owner foreign key, load, rebuild once.

    Per-row index updates and foreign-key checks cost far more than building
    each index in one pass and validating the key with a single join afterwards.
    """
    table = cast(Table, Item.__table__)
    indexes = [ix for ix in table.indexes if ix.name and not ix.unique]
    foreign_keys = [fk for fk in table.foreign_key_constraints if fk.name]
    connection = session.connection()
    connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))  # faster index builds
    connection.execute(text("SET LOCAL synchronous_commit = off"))
    for fk in foreign_keys:
        connection.execute(DropConstraint(fk))
    for index in indexes:
        connection.execute(DropIndex(index, if_exists=True))
    yield
    for index in indexes:
        connection.execute(CreateIndex(index))
    for fk in foreign_keys:
        connection.execute(AddConstraint(fk))


def _copy_items(
    session: Session, lines: Iterator[str], progress: Callable[[int], None] | None
) -> int:
    """COPY in text format, a batch of lines per write."""
    dbapi = session.connection().connection.dbapi_connection
    total = 0
    sql = f"COPY item ({', '.join(_COLUMNS)}) FROM STDIN"
    with dbapi.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
        for batch in _batches(lines, _BATCH):
            copy.write("".join(batch))
            total += len(batch)
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
    inserted = bulk_insert_items(session, owners, count=missing, first=have + 1, progress=progress)
    # COPY writes no ORM rows and announces nothing, so running servers learn from this
    # that their totals and cached tables are stale.
    mark_stale(session, "items", "users", "user-names")
    return SeedReport(created_users, inserted)


def settle_bulk_load(engine: Engine) -> None:
    """VACUUM (ANALYZE) the items after a bulk load, outside its transaction (PostgreSQL).

    Rows a COPY wrote are not yet marked all-visible, so until (auto)vacuum reaches the
    table every index-only scan also reads the heap: a search sorted by name over a
    million items took 142 ms instead of 38 (and autovacuum may be off, or hours away).
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:  # SKIP_LOCKED: a load still open is not waited for
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM (ANALYZE, SKIP_LOCKED) item")
        )
