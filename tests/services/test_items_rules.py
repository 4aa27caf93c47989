"""Who may change which item: the per-page set agrees with the per-item rule."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.models.user import User
from app.services.items import can_change, changeable_ids


@dataclass
class Row:
    id: int
    owner_id: int


ROWS = [Row(1, 10), Row(2, 20), Row(3, 10), Row(4, 30)]


@pytest.mark.parametrize("role", ["admin", "user", "guest"])
@pytest.mark.parametrize("user_id", [10, 20, 99])
def test_changeable_ids_is_can_change_for_each_row(role: str, user_id: int) -> None:
    user = User(id=user_id, email="x@example.com", role=role)
    assert changeable_ids(user, ROWS) == {r.id for r in ROWS if can_change(user, r)}


def test_owners_change_their_own_admins_everything_guests_nothing() -> None:
    assert changeable_ids(User(id=10, email="u@example.com", role="user"), ROWS) == {1, 3}
    assert changeable_ids(User(id=10, email="a@example.com", role="admin"), ROWS) == {1, 2, 3, 4}
    assert changeable_ids(User(id=10, email="g@example.com", role="guest"), ROWS) == set()
