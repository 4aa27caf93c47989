"""The one control-character rule, and the JSON Schema pattern that documents it."""

from __future__ import annotations

import sys
from collections.abc import Callable

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.utils.text import allowed_text_pattern, has_control_chars

# Every character class the rule treats differently, plus ordinary text around them.
CHARS = st.sampled_from(
    [chr(c) for c in range(0x21)] + ["\x7f", "\x85", "\xa0", "\u2028", "\u3000", "a", "é", "☕"]
)
TEXT = st.text(CHARS, max_size=6) | st.text(max_size=6)  # hypothesis draws no surrogates


def matcher(pattern: str) -> Callable[[str], bool]:
    """How a JSON Schema validator reads `pattern` (ECMA-262: `$` is the very end)."""
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    return lambda value: bool(validator.is_valid(value))


@pytest.mark.parametrize("multiline", [False, True])
@given(value=TEXT)
def test_the_documented_pattern_accepts_exactly_what_the_rule_accepts(
    multiline: bool, value: str
) -> None:
    accepts = matcher(allowed_text_pattern(multiline=multiline))
    assert accepts(value) is not has_control_chars(value, multiline=multiline)


@pytest.mark.parametrize("multiline", [False, True])
@given(value=TEXT)
def test_the_visible_pattern_also_wants_something_besides_whitespace(
    multiline: bool, value: str
) -> None:
    accepts = matcher(allowed_text_pattern(multiline=multiline, visible=True))
    allowed = not has_control_chars(value, multiline=multiline) and bool(value.strip())
    assert accepts(value) is allowed


def test_whitespace_in_the_pattern_is_what_strip_removes() -> None:
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    visible = matcher(allowed_text_pattern(multiline=True, visible=True))
    for ch in spaces:
        assert not visible(ch), repr(ch)  # whitespace alone is never enough
        if not has_control_chars(ch, multiline=True):
            assert visible(f"{ch}x{ch}"), repr(ch)
    assert visible("\u200b")  # a zero-width space is not whitespace to str.strip


def test_lone_surrogates_are_refused_though_no_pattern_can_say_so() -> None:
    assert has_control_chars("a\ud800") and has_control_chars("\udfff", multiline=True)
    assert not has_control_chars("\U0001f4a5")  # a pair, as JSON spells it, is one character
