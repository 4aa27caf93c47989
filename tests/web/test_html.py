"""HTML written in Python (app/web/html.py) escapes exactly as Jinja's autoescape does."""

from __future__ import annotations

import pytest
from markupsafe import escape

from app.web.html import _replace_five, escape_text

SAMPLES = [
    "",
    "plain text 123",
    '<script>alert("x")</script>',
    "a & b && c",
    "&amp; &lt; &#34; already-escaped text is escaped again",
    "it's \"quoted\" 'twice'",
    "Ünïcødé “curly” — dash ☃ \U0001f600",
    "{{ 7*7 }} {% raw %} ${x}",
    "".join(chr(c) for c in range(1, 128)),
]


@pytest.mark.parametrize("text", SAMPLES)
def test_escape_text_is_markupsafes_escape(text: str) -> None:
    assert escape_text(text) == str(escape(text))
    assert _replace_five(text) == str(escape(text))  # without markupsafe's C speedups


def test_escape_text_escapes_every_special_character_once() -> None:
    assert escape_text("&<>\"'") == "&amp;&lt;&gt;&#34;&#39;"
    assert escape_text("&lt;") == "&amp;lt;"
