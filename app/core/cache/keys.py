"""Cache keys from a function and its arguments: readable, and equal in every process and restart.

`hash()` is salted per process and default reprs carry memory addresses, so keys are
built from a canonical text of each argument instead; long texts are digested.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import inspect
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

MAX_ARGS_CHARS = 120
"""Argument texts longer than this are replaced by a digest (Redis keys stay short)."""

MEMO_SIZE = 512
"""Keys remembered per function for calls whose one kept argument is an int or a str."""

_REPR_TYPES = (
    int,
    float,
    bool,
    str,
    bytes,
    dt.datetime,
    dt.date,
    dt.time,
    dt.timedelta,
    Decimal,
    uuid.UUID,
)
_REPR_KINDS = frozenset((type(None), *_REPR_TYPES))  # exact types: one hash lookup, not a scan
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class UnstableKeyError(TypeError):
    """An argument whose text would differ between processes (no `__cache_key__`, default repr)."""


KeyOf = Callable[[tuple[Any, ...], Mapping[str, Any]], str]
"""Builds the key of one call from its positional and keyword arguments."""


class CallKey:
    """Builds the key of one call of a function; `f(1)` and `f(user_id=1)` give the same key.

    A call that passes every parameter by position (the common case) is keyed without
    binding the signature: which arguments to leave out is known by position in advance,
    and `key` is a function made for this signature (`@cached` calls it on every hit).
    """

    def __init__(
        self, func: Callable[..., Any], *, key_prefix: str, ignore: Collection[str]
    ) -> None:
        name = f"{func.__module__}.{func.__qualname__}"
        self.base = f"{key_prefix}:{name}" if key_prefix else name
        """`<prefix>:<module>.<qualname>`, the part of the key shared by all calls."""
        self._signature = inspect.signature(func)
        self._ignore = frozenset(ignore)
        self.key: KeyOf = self._build()

    def _by_name(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = [v for k, v in bound.arguments.items() if k not in self._ignore]
        return f"{self.base}:{args_text(values)}"

    def _build(self) -> KeyOf:
        params = list(self._signature.parameters.values())
        if not all(p.kind in _POSITIONAL for p in params):
            return self._by_name
        arity, head, by_name = len(params), self.base + ":", self._by_name
        kept = tuple(i for i, p in enumerate(params) if p.name not in self._ignore)

        if not kept:  # every argument ignored (a session): one key for all calls

            def key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
                return head if not kwargs and len(args) == arity else by_name(args, kwargs)

        elif len(kept) == 1:  # one kept argument: most cached functions
            only = kept[0]
            # Only exact ints and strs go in: they never equal one another, whereas 1, True,
            # 1.0 and Decimal(1) are equal as dict keys but have different keys here.
            memo: dict[int | str, str] = {}

            def key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
                if kwargs or len(args) != arity:
                    return by_name(args, kwargs)
                value = args[only]
                kind = type(value)
                if kind is not int and kind is not str:
                    return head + args_text((value,))
                known = memo.get(value)
                if known is None:
                    if len(memo) >= MEMO_SIZE:  # the working set moved on: start afresh
                        memo.clear()
                    known = memo[value] = head + args_text((value,))
                return known

        else:

            def key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
                if kwargs or len(args) != arity:
                    return by_name(args, kwargs)
                return head + args_text([args[i] for i in kept])

        return key


def args_text(values: Sequence[Any]) -> str:
    """Return the canonical text of argument values, digested when long."""
    text = canonical(values[0]) if len(values) == 1 else ",".join(map(canonical, values))
    return text if len(text) <= MAX_ARGS_CHARS else _digest(text)


def _digest(text: str) -> str:
    return "#" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def canonical(value: Any) -> str:
    """Return a text for `value` that is the same in every process; raise if there is none."""
    kind = type(value)
    if kind in _REPR_KINDS:
        return repr(value)
    if kind is list or kind is tuple:
        inner = ",".join(map(canonical, value))
        return f"[{inner}]" if kind is list else f"({inner})"
    if kind is dict:
        items = sorted(f"{canonical(k)}:{canonical(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if kind is set or kind is frozenset:
        return kind.__name__ + "{" + ",".join(sorted(map(canonical, value))) + "}"
    return _canonical_object(value)


def _canonical_object(value: Any) -> str:
    name = type(value).__qualname__
    own_key = getattr(value, "__cache_key__", None)
    if callable(own_key):
        return f"{name}<{canonical(own_key())}>"
    if isinstance(value, Enum):
        return f"{name}.{value.name}"
    if isinstance(value, _REPR_TYPES):  # subclasses such as datetime
        return f"{name}<{value!r}>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return f"{name}<{canonical(fields)}>"
    text = repr(value)
    if text.startswith("<") or " at 0x" in text:
        raise UnstableKeyError(
            f"a {name} argument has no stable text for a cache key: give it a "
            "__cache_key__() method, or leave the parameter out with ignore=(...)"
        )
    return text
