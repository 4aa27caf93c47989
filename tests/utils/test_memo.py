"""The bounded memo makes each value once and never holds more than its limit."""

from __future__ import annotations

from collections.abc import Hashable

from app.utils.memo import remembered


def test_a_value_is_made_once_and_the_memo_stays_bounded() -> None:
    kept: dict[Hashable, str] = {}
    made: list[int] = []

    def make(n: int) -> str:
        made.append(n)
        return f"value {n}"

    assert remembered(kept, 1, lambda: make(1), limit=3) == "value 1"
    assert remembered(kept, 1, lambda: make(1), limit=3) == "value 1"
    assert made == [1]
    for n in range(2, 10):
        remembered(kept, n, lambda n=n: make(n), limit=3)
        assert len(kept) <= 3
    assert remembered(kept, 9, lambda: make(99), limit=3) == "value 9"
