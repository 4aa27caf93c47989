"""Users and items for tests, made through the services (so events and audit rows follow)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from flask import Flask
from sqlalchemy.orm import Session

from app.core.events import SYSTEM, Actor
from app.extensions import db
from app.models import Item, User
from app.services.users import create_user

PASSWORD = "correct-horse-battery"
FAST_ITERATIONS = 1_000  # hashing cost is tested in tests/utils; elsewhere keep tests quick
ROLES = ("admin", "user", "guest")


def make_user(
    session: Session,
    email: str,
    *,
    role: str = "user",
    name: str = "",
    password: str | None = PASSWORD,
    iterations: int = FAST_ITERATIONS,
    actor: Actor = SYSTEM,
) -> User:
    """An account (password PASSWORD unless given; None: no password)."""
    return create_user(
        session,
        email=email,
        name=name,
        role=role,
        password=password,
        iterations=iterations,
        actor=actor,
    )


def make_role_accounts(session: Session, *, name_suffix: str = "") -> dict[str, int]:
    """One account per role, <role>@example.com with password PASSWORD; ids by role."""
    names = {role: role.title() + name_suffix for role in ROLES}
    return {
        role: make_user(session, f"{role}@example.com", role=role, name=names[role]).id
        for role in ROLES
    }


def make_items(session: Session, owner_id: int, rows: Iterable[tuple[str, str, str]]) -> list[Item]:
    """Items (name, price, status) for an owner, flushed so they have ids."""
    items = [
        Item(owner_id=owner_id, name=n, price=Decimal(p), status=s, description=f"about {n}")
        for n, p, s in rows
    ]
    session.add_all(items)
    session.flush()
    return items


def seed_items(app: Flask, owner_id: int, rows: list[tuple[str, str, str]]) -> list[int]:
    """Commit (name, price, status) items for an owner; returns their ids in order."""
    with app.app_context(), db.transaction() as session:
        return [item.id for item in make_items(session, owner_id, rows)]
