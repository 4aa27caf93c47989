"""Values to bytes and back for L2 without pickle: msgpack plus an explicit registry of types.

Redis is shared by every instance, so a pickle read from it could run code. msgpack
only rebuilds plain data; anything richer is named here with a stable code, and a
value of any other type is refused when it is cached, not when it is read back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import msgpack

T = TypeVar("T")

APP_CODES = range(32, 128)
"""Extension codes left to the app; 1-31 are the built-in types below."""


class UnsupportedValueError(TypeError):
    """A value of a type the L2 serializer was not taught (see `register_type`)."""


@dataclass(frozen=True, slots=True)
class _Codec:
    cls: type[Any]
    code: int
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_BY_TYPE: dict[type[Any], _Codec] = {}
_BY_CODE: dict[int, _Codec] = {}


def register_type(
    cls: type[T], *, code: int, encode: Callable[[T], Any], decode: Callable[[Any], T]
) -> None:
    """Let values of `cls` be cached: `encode` to plain data, `decode` back; codes 32-127."""
    if code not in APP_CODES:
        raise ValueError(f"extension code {code} is reserved; the app's codes are 32-127")
    register_builtin(cls, code, encode, decode)


def register_builtin(
    cls: type[Any], code: int, encode: Callable[..., Any], decode: Callable[..., Any]
) -> None:
    """Register a type of this package's own (codes 1-31); idempotent for the same type."""
    if not 0 < code < 128:
        raise ValueError(f"extension code {code} is outside 1..127")
    known = _BY_CODE.get(code)
    if known is not None and known.cls is not cls:
        raise ValueError(f"extension code {code} is taken by {known.cls.__qualname__}")
    codec = _Codec(cls, code, encode, decode)
    _BY_TYPE[cls] = codec
    _BY_CODE[code] = codec


def dumps(value: Any) -> bytes:
    """Encode a value; raise `UnsupportedValueError` for a type nobody registered."""
    data: bytes = msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)
    return data


def loads(data: bytes) -> Any:
    """Decode what `dumps` produced (tuples stay tuples, datetimes stay datetimes)."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def _default(obj: Any) -> msgpack.ExtType:
    codec = _BY_TYPE.get(type(obj))
    if codec is None:
        raise UnsupportedValueError(
            f"cannot cache a {type(obj).__module__}.{type(obj).__qualname__}: cache plain data "
            "or teach the cache the type with app.core.cache.register_type()"
        )
    return msgpack.ExtType(codec.code, dumps(codec.encode(obj)))


def _ext_hook(code: int, data: bytes) -> Any:
    codec = _BY_CODE.get(code)
    if codec is None:
        raise UnsupportedValueError(f"unknown cache extension code {code} (newer writer?)")
    return codec.decode(loads(data))


def _builtin_types() -> None:
    register_builtin(tuple, 1, list, tuple)
    register_builtin(set, 2, list, set)
    register_builtin(frozenset, 3, list, frozenset)
    register_builtin(dt.datetime, 4, dt.datetime.isoformat, dt.datetime.fromisoformat)
    register_builtin(dt.date, 5, dt.date.isoformat, dt.date.fromisoformat)
    register_builtin(dt.time, 6, dt.time.isoformat, dt.time.fromisoformat)
    register_builtin(dt.timedelta, 7, _timedelta_parts, _timedelta_from_parts)
    register_builtin(Decimal, 8, str, Decimal)
    register_builtin(uuid.UUID, 9, lambda u: u.bytes, lambda b: uuid.UUID(bytes=b))


def _timedelta_parts(delta: dt.timedelta) -> list[int]:
    return [delta.days, delta.seconds, delta.microseconds]


def _timedelta_from_parts(parts: list[int]) -> dt.timedelta:
    return dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2])


_builtin_types()
