"""A bounded memo: values worked out once per process and kept in a plain dict."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

V = TypeVar("V")


def remembered(kept: dict[Hashable, V], key: Hashable, make: Callable[[], V], limit: int) -> V:
    """`kept[key]`, made by `make()` on first use. The dict is emptied when it reaches
    `limit`: the keys come from requests, so only the bound keeps memory flat, and what is
    in use comes back at once."""
    found = kept.get(key)
    if found is None:
        if len(kept) >= limit:
            kept.clear()
        found = kept[key] = make()
    return found
