"""HTML written in Python for the hottest parts of a page (the items rows, the pager).

Jinja costs a few microseconds per expression; a table page prints a few hundred. The
parts written here escape exactly as Jinja's autoescape does, so their HTML is byte for
byte what the templates wrote (tests/web/test_html.py holds both to it).
"""

from __future__ import annotations


def escape_text(value: str) -> str:
    """`str(markupsafe.escape(value))` for a str, without building a Markup per value.

    The same five replacements markupsafe makes (& < > " '), `&amp;` first; for text with
    none of them each replace returns the string itself.
    """
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )
