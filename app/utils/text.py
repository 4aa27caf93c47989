"""The one rule for text people type: which characters are refused everywhere."""

from __future__ import annotations

_CONTROL = frozenset(chr(c) for c in range(32)) | {"\x7f"}
_LINE_BREAKS_AND_TABS = frozenset("\t\n\r")

# The same rule as regular-expression classes, for JSON Schema `pattern`s (OpenAPI).
_REFUSED = r"\x00-\x1f\x7f"
_REFUSED_MULTILINE = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""Exactly the characters str.isspace() (and so str.strip()) treats as whitespace."""


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


def allowed_text_pattern(*, multiline: bool = False, visible: bool = False) -> str:
    """A regular expression for the text has_control_chars accepts (as JSON Schema states it);
    with `visible`, the text must also hold something besides whitespace.

    Lone surrogates are refused too, but a pattern cannot name them (nor can
    JSON text generators produce them), so documents say it in words.
    """
    refused = _REFUSED_MULTILINE if multiline else _REFUSED
    if not visible:
        return f"^[^{refused}]*$"
    return f"^[^{refused}]*[^{refused}{_SPACE}][^{refused}]*$"
