"""The one rule for text people type: which characters are refused everywhere."""

from __future__ import annotations

_CONTROL = frozenset(chr(c) for c in range(32)) | {"\x7f"}
_LINE_BREAKS_AND_TABS = frozenset("\t\n\r")


def has_control_chars(value: str, *, multiline: bool = False) -> bool:
    """True for NUL and other control characters, and for lone surrogates.

    PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as
    UTF-8 at all, so either would fail at the database or in a response after
    the write. Tabs and line breaks are allowed only where `multiline` text is.
    """
    for ch in value:
        if ch in _CONTROL:
            if not (multiline and ch in _LINE_BREAKS_AND_TABS):
                return True
        elif "\ud800" <= ch <= "\udfff":
            return True
    return False
