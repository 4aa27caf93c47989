"""The items table's rows as HTML, written in Python.

A page shows 25-100 rows; as a Jinja loop each row cost about twenty expressions,
escapes and attribute look-ups, which made the rows the largest part of rendering the
items table (about half of the template time of a first render). Here each value is
escaped once, as Jinja's autoescape escapes it (app/web/html.py), so the HTML is byte
for byte what the template wrote, and a row is two f-strings. The price and the date are
not escaped: `money` and `minute` write only digits, `$`, `,`, `.`, `-`, `:` and spaces
(tests/web/test_item_rows.py holds them to it).

Only the rows live here: the table around them stays in templates/items/index.html,
whose `item_rows` block calls `item_rows(...)` (registered by app/web/items.py).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from markupsafe import Markup

from app.templating import minute, money
from app.web.html import escape_text


class ItemRow(Protocol):
    """What a row shows: the item's columns and its owner's name (joined in)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def owner_name(self) -> str | None: ...
    @property
    def owner_email(self) -> str | None: ...


_SELECT = (
    '<td class="select-col"><label class="row-select"><input type="checkbox" name="ids"'
    ' value="{id}" form="bulk-form" aria-label="Select {name}"><span class="row-select-text"'
    ' aria-hidden="true">Select</span></label></td>'
)
_NO_SELECT = '<td class="select-col is-empty"></td>'
_NO_ACTIONS = '        <td class="actions is-empty"></td>\n      </tr>\n'


def render_item_rows(
    rows: Iterable[ItemRow],
    *,
    base: str,
    changeable: Container[int],
    can_write: bool,
    saved: Any = False,
) -> Markup:
    """The `<tr>` of each row: links under `base` (the items path), a checkbox and the
    Edit and Delete actions on the rows in `changeable`, the select column for writers."""
    opened = ' class="is-saved">\n' if saved else ">\n"
    base_html = escape_text(base)
    out: list[str] = []
    for row in rows:
        item_id = int(row.id)  # an int: safe in HTML as it is
        name = escape_text(row.name)
        status = escape_text(row.status)
        href = f"{base_html}/{item_id}"
        owner = escape_text(row.owner_name or row.owner_email or "—")
        mine = item_id in changeable
        select = ""
        if can_write:
            select = _SELECT.format(id=item_id, name=name) if mine else _NO_SELECT
        out.append(
            f'      <tr id="item-{item_id}"{opened}{select}'
            f'        <td data-label="Name"><a href="{href}">{name}</a></td>\n'
            f'        <td data-label="Status"><span class="badge badge-{status}">{status}'
            "</span></td>\n"
            f'        <td data-label="Price" class="num">{money(row.price)}</td>\n'
            f'        <td data-label="Owner">{owner}</td>\n'
            f'        <td data-label="Created">{minute(row.created_at)}</td>\n'
        )
        out.append(_actions(href, item_id, name) if mine else _NO_ACTIONS)
    return Markup("".join(out))  # noqa: S704 - every value above is escaped or an int


def _actions(href: str, item_id: int, name: str) -> str:
    return (
        '        <td class="actions"><div class="row-actions">\n'
        f'          <a class="btn btn-sm btn-secondary" href="{href}/edit"'
        f' data-focus-key="edit-{item_id}"\n'
        f'             hx-get="{href}/edit" hx-target="closest tr" hx-swap="outerHTML">Edit</a>\n'
        f'          <a class="btn btn-sm btn-danger" href="{href}/delete" hx-post="{href}/delete"\n'
        f'             hx-confirm="Delete “{name}”? This cannot be undone.">Delete</a>\n'
        "        </div></td>\n      </tr>\n"
    )
