"""The DataTable's pager as HTML, written in Python.

The pager of a table page draws a dozen links, each printed twice (href and hx-get);
as a Jinja macro it was the largest part of a table region after the rows. This is the
HTML templates/_macros/table.html's `pager(view)` macro wrote, byte for byte (its
source is kept in tests/web/test_pager.py, which holds the two equal), escaped as
Jinja's autoescape escapes (app/web/html.py). The macro now calls `table_pager(view)`.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from app.web.html import escape_text
from app.web.tables import PagerItem, TableView


def _control(item: PagerItem) -> str:
    """First, Prev, Next or Last: a link, or a disabled button on the first or last page."""
    label, aria = escape_text(item.label), escape_text(item.aria_label)
    if not item.url:
        return (
            '<span class="btn btn-sm btn-secondary is-disabled" aria-disabled="true"'
            f' tabindex="-1" data-focus-key="pager-{aria}">{label}</span>'
        )
    url = escape_text(item.url)
    rel = f' rel="{escape_text(item.rel)}"' if item.rel else ""
    return (
        f'<a href="{url}" hx-get="{url}" hx-push-url="true" data-focus-key="pager-{aria}"'
        f' class="btn btn-sm btn-secondary"{rel} aria-label="{aria}">{label}</a>'
    )


def _number(item: PagerItem) -> str:
    """A page number: a link, the current page, or a gap."""
    if item.gap:
        return '<span class="gap" aria-hidden="true">…</span>'
    label, aria = escape_text(item.label), escape_text(item.aria_label)
    if item.current:
        return (
            '<span class="btn btn-sm is-current" aria-current="page" tabindex="-1"'
            f' data-focus-key="pager-{aria}">{label}</span>'
        )
    url = escape_text(item.url)
    return (
        f'<a href="{url}" hx-get="{url}" hx-push-url="true" data-focus-key="pager-{aria}"'
        f' class="btn btn-sm btn-secondary" aria-label="{aria}">{label}</a>'
    )


def _per_page(view: TableView[Any]) -> str:
    """The rows-per-page form: the state it keeps as hidden inputs, and the choices."""
    base = escape_text(view.base_url)
    kept = "".join(
        f'<input type="hidden" name="{escape_text(key)}" value="{escape_text(str(value))}">'
        for key, value in view.kept_params
    )
    current = view.state.per_page
    options = "".join(
        f'<option value="{n}"{" selected" if n == current else ""}>{n}</option>'
        for n in view.spec.per_page_choices
    )
    return (
        f'  <form class="per-page" method="get" action="{base}" hx-get="{base}"'
        ' hx-trigger="change" hx-push-url="true">\n'
        f"{kept}    <label>Rows per page\n"
        '      <select name="per_page" data-focus-key="per-page">\n'
        f"{options}      </select>\n"
        "    </label>\n"
        '    <noscript><button class="btn btn-sm btn-secondary" type="submit">Apply</button>'
        "</noscript>\n"
        "  </form>\n"
    )


def render_pager(view: TableView[Any]) -> Markup:
    """The pager under a table: the summary, page links when there is more than one
    page, and the page-size form when there are more rows than the smallest size."""
    parts = [
        '<nav class="pager" aria-label="Pages">\n',
        f'  <span class="muted pager-summary">{escape_text(view.summary)}</span>\n',
    ]
    page = view.page
    if page.pages > 1:
        controls = view.pager
        parts += [
            '  <span class="pager-links">\n',
            *map(_control, controls.before),
            '    <span class="page-numbers">\n',
            *map(_number, controls.numbers),
            "    </span>\n",
            *map(_control, controls.after),
            "  </span>\n",
        ]
    if page.total > view.spec.per_page_choices[0]:
        parts.append(_per_page(view))
    parts.append("</nav>\n")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped or an int
