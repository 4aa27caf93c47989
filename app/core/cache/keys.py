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
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class UnstableKeyError(TypeError):
    """An argument whose text would differ between processes (no `__cache_key__`, default repr)."""


def function_key_base(func: Callable[..., Any], key_prefix: str = "") -> str:
    """Return `<prefix>:<module>.<qualname>`, the part of the key shared by all calls."""
    name = f"{func.__module__}.{func.__qualname__}"
    return f"{key_prefix}:{name}" if key_prefix else name


class CallKey:
    """Builds the key of one call of a function; `f(1)` and `f(user_id=1)` give the same key."""

    def __init__(
        self, func: Callable[..., Any], *, key_prefix: str, ignore: Collection[str]
    ) -> None:
        self.base = function_key_base(func, key_prefix)
        self._signature = inspect.signature(func)
        params = list(self._signature.parameters.values())
        self._arity = len(params) if all(p.kind in _POSITIONAL for p in params) else -1
        self._ignore = frozenset(ignore)
        self._kept = tuple(i for i, p in enumerate(params) if p.name not in self._ignore)
        self._keep_all = len(self._kept) == len(params)

    def __call__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """Return the key for a call with these arguments."""
        values: Sequence[Any]
        if not kwargs and len(args) == self._arity:  # the common case, without binding
            values = args if self._keep_all else [args[i] for i in self._kept]
        else:
            bound = self._signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = [v for k, v in bound.arguments.items() if k not in self._ignore]
        return f"{self.base}:{args_text(values)}"


def args_text(values: Sequence[Any]) -> str:
    """Return the canonical text of argument values, digested when long."""
    text = canonical(values[0]) if len(values) == 1 else ",".join(map(canonical, values))
    if len(text) <= MAX_ARGS_CHARS:
        return text
    return "#" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def canonical(value: Any) -> str:
    """Return a text for `value` that is the same in every process; raise if there is none."""
    kind = type(value)
    if value is None or kind in _REPR_TYPES:
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
