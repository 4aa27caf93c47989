"""The items table's rows as HTML, written in Python.

A page shows 25-100 rows; as a Jinja loop each row cost about twenty expressions,
escapes and attribute look-ups, which made the rows the largest part of rendering the
items table (about half of the template time of a first render). Here each value is
escaped once with markupsafe (the escaping Jinja's autoescape applies, so the HTML is
byte for byte what the template wrote) and the row is one format string.

Only the rows live here: the table around them stays in templates/items/index.html,
whose `item_rows` block calls `item_rows(...)` (registered by app/web/items.py).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from markupsafe import Markup, escape

from app.templating import minute, money


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


_ROW = '      <tr id="item-{id}">\n'
_SAVED_ROW = '      <tr id="item-{id}" class="is-saved">\n'
_SELECT = (
    '<td class="select-col"><label class="row-select"><input type="checkbox" name="ids"'
    ' value="{id}" form="bulk-form" aria-label="Select {name}"><span class="row-select-text"'
    ' aria-hidden="true">Select</span></label></td>'
)
_NO_SELECT = '<td class="select-col is-empty"></td>'
_CELLS = (
    '        <td data-label="Name"><a href="{href}">{name}</a></td>\n'
    '        <td data-label="Status"><span class="badge badge-{status}">{status}</span></td>\n'
    '        <td data-label="Price" class="num">{price}</td>\n'
    '        <td data-label="Owner">{owner}</td>\n'
    '        <td data-label="Created">{created}</td>\n'
)
_ACTIONS = (
    '        <td class="actions"><div class="row-actions">\n'
    '          <a class="btn btn-sm btn-secondary" href="{href}/edit" data-focus-key="edit-{id}"\n'
    '             hx-get="{href}/edit" hx-target="closest tr" hx-swap="outerHTML">Edit</a>\n'
    '          <a class="btn btn-sm btn-danger" href="{href}/delete" hx-post="{href}/delete"\n'
    '             hx-confirm="Delete “{name}”? This cannot be undone.">Delete</a>\n'
    "        </div></td>\n"
)
_NO_ACTIONS = '        <td class="actions is-empty"></td>\n'


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
    prefix = _SAVED_ROW if saved else _ROW
    base_html = escape(base)
    out: list[str] = []
    for row in rows:
        item_id = int(row.id)  # an int: safe in HTML as it is
        name = escape(row.name)
        href = f"{base_html}/{item_id}"
        mine = item_id in changeable
        out.append(prefix.format(id=item_id))
        if can_write:
            out.append(_SELECT.format(id=item_id, name=name) if mine else _NO_SELECT)
        out.append(
            _CELLS.format(
                href=href,
                name=name,
                status=escape(row.status),
                price=escape(money(row.price)),
                owner=escape(row.owner_name or row.owner_email or "—"),
                created=escape(minute(row.created_at)),
            )
        )
        out.append(_ACTIONS.format(href=href, id=item_id, name=name) if mine else _NO_ACTIONS)
        out.append("      </tr>\n")
    return Markup("".join(out))  # noqa: S704 - every value above is escaped or an int
