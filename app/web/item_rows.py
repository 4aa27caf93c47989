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

from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from markupsafe import Markup

from app.templating import minute, money
from app.web.html import escape_text
from app.web.table_html import render_header, render_mobile_sort, render_pager, render_state_inputs
from app.web.tables import TableView


class ItemRow(Protocol):
    """What a row shows of an item (its owner's name comes from `owners`, by id)."""

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
    def owner_id(self) -> int: ...


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
    owners: Mapping[int, str],
    changeable: Container[int],
    can_write: bool,
    saved: Any = False,
) -> Markup:
    """The `<tr>` of each row: links under `base` (the items path), the owner's name from
    `owners` (user_service.display_names), a checkbox and the Edit and Delete actions on
    the rows in `changeable`, the select column for writers."""
    opened = ' class="is-saved">\n' if saved else ">\n"
    base_html = escape_text(base)
    out: list[str] = []
    for row in rows:
        item_id = int(row.id)  # an int: safe in HTML as it is
        name = escape_text(row.name)
        status = escape_text(row.status)
        href = f"{base_html}/{item_id}"
        owner = escape_text(owners.get(row.owner_id) or "—")
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


_ACTIONS_HEADER = Markup(
    '<th scope="col" class="actions-col"><span class="sr-only">Actions</span></th>'
)
_BULK_ACTIONS = (
    '    <select name="action" aria-label="Bulk action">\n'
    '      <option value="activate" data-confirm="Mark {count} active?">Mark active</option>\n'
    '      <option value="archive" data-confirm="Archive {count}?">Archive</option>\n'
    '      <option value="draft" data-confirm="Move {count} to draft?">Move to draft</option>\n'
    '      <option value="delete" data-confirm="Delete {count}? This cannot be undone.">Delete'
    "</option>\n"
    "    </select>\n"
    '    <button class="btn btn-sm" type="submit" data-focus-key="bulk-apply">Apply</button>\n'
    "  </div>\n"
)


def render_items_region(
    view: TableView[Any],
    rows: Sequence[ItemRow],
    *,
    base: str,
    owners: Mapping[int, str],
    changeable: Container[int],
    can_write: bool,
    changeable_total: int,
    is_admin: bool,
) -> Markup:
    """The inside of the items table region: the state inputs, the bulk form and bar, the
    table (sort chips, header, rows) or the empty state, and the pager.

    The same HTML for one URL state and one kind of viewer, so the view caches it
    (app/web/regions.py). As a Jinja block it cost a first render more than the rows did.
    """
    base_html = escape_text(base)
    kept = "".join(
        f'<input type="hidden" name="{escape_text(key)}" value="{escape_text(str(value))}">'
        for key, value in view.state.params(page=1, cursor="").items()
    )
    parts = [
        render_state_inputs(view, "items-search"),
        f'\n<form id="bulk-form" method="post" action="{base_html}/bulk"'
        f' hx-post="{base_html}/bulk"\n'
        '      hx-confirm="Apply this action to the chosen items?">\n'
        f"{kept}",
    ]
    scope = escape_text(view.scope)
    if can_write and changeable_total:
        plural = "s" if changeable_total != 1 else ""
        parts.append(
            '  <div class="bulk-bar" data-bulk-bar data-noun="item" data-nouns="items">\n'
            '    <span class="bulk-count" data-bulk-count aria-live="polite">'
            "Select rows to act on them.</span>\n"
            '    <label class="checkbox bulk-all"><input type="checkbox" name="scope"'
            ' value="all" data-bulk-all\n'
            f'        data-count="{int(changeable_total)}" data-scope="{scope}">\n'
            f"      All {int(changeable_total):,}{'' if is_admin else ' of your'} item{plural}"
            f"{f' {scope}' if scope else ''}</label>\n"
            f"{_BULK_ACTIONS}"
        )
    parts.append("</form>\n")
    if rows:
        parts += [
            render_mobile_sort(view),
            '\n<div class="table-wrap">\n  <table class="table stack items">\n',
            render_header(view, select_all=can_write, extra=_ACTIONS_HEADER),
            "    <tbody>\n",
            render_item_rows(
                rows, base=base, owners=owners, changeable=changeable, can_write=can_write
            ),
            "    </tbody>\n  </table>\n</div>\n",
        ]
    elif scope:
        every = escape_text(view.base_url)
        parts.append(
            '<div class="empty">\n'
            f"  <p><strong>No items {scope}.</strong></p>\n"
            "  <p>Check the spelling, try a shorter search, or\n"
            f'    <a href="{every}" hx-get="{every}" hx-push-url="true">show every item</a>.</p>\n'
            "</div>\n"
        )
    else:
        create = (
            f'<p><a class="btn" href="{base_html}/new">Create the first one</a></p>'
            if can_write
            else ""
        )
        parts.append(
            f'<div class="empty">\n  <p><strong>No items yet.</strong></p>\n{create}</div>\n'
        )
    parts += [render_pager(view), "\n"]
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped or an int
