"""The items table's rows written in Python: the same HTML as the Jinja loop they replace,
hostile names escaped, links and actions only where the viewer may act."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from jinja2 import Environment
from markupsafe import Markup

from app.core.listing import Page
from app.templating import minute, money
from app.web.html import escape_text
from app.web.item_rows import render_item_rows, render_items_region
from app.web.items import SPEC
from app.web.table_html import render_header, render_mobile_sort, render_pager, render_state_inputs
from app.web.tables import TableState, TableView

# The loop templates/items/index.html had before the rows moved to Python, verbatim.
JINJA_ROWS = """\
      {% for item in rows %}{% set href = items_base ~ "/" ~ item.id %}{% set name = item.name|e %}{% set mine = item.id in changeable %}
      <tr id="item-{{ item.id }}"{% if saved %} class="is-saved"{% endif %}>
        {% if can_write %}<td class="select-col{% if not mine %} is-empty{% endif %}">{% if mine %}<label class="row-select"><input type="checkbox" name="ids" value="{{ item.id }}" form="bulk-form" aria-label="Select {{ name }}"><span class="row-select-text" aria-hidden="true">Select</span></label>{% endif %}</td>{% endif %}
        <td data-label="Name"><a href="{{ href }}">{{ name }}</a></td>
        <td data-label="Status"><span class="badge badge-{{ item.status }}">{{ item.status }}</span></td>
        <td data-label="Price" class="num">{{ item.price|money }}</td>
        <td data-label="Owner">{{ item.owner_name or item.owner_email or '—' }}</td>
        <td data-label="Created">{{ item.created_at|date }}</td>
        <td class="actions{% if not mine %} is-empty{% endif %}">{% if mine %}<div class="row-actions">
          <a class="btn btn-sm btn-secondary" href="{{ href }}/edit" data-focus-key="edit-{{ item.id }}"
             hx-get="{{ href }}/edit" hx-target="closest tr" hx-swap="outerHTML">Edit</a>
          <a class="btn btn-sm btn-danger" href="{{ href }}/delete" hx-post="{{ href }}/delete"
             hx-confirm="Delete “{{ name }}”? This cannot be undone.">Delete</a>
        </div>{% endif %}</td>
      </tr>
      {% endfor %}"""  # noqa: E501

HOSTILE = "<script>alert(\"x\")</script> & 'quoted' {{ 7*7 }} a&amp;b"


@dataclass
class Row:
    id: int
    name: str
    status: str
    price: Decimal
    created_at: datetime
    owner_name: str | None  # what the Jinja loop read (the rows had the owner joined in)
    owner_email: str | None

    @property
    def owner_id(self) -> int:
        return self.id * 10


ROWS = [
    Row(1, HOSTILE, "active", Decimal("1234567.89"), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        'Uma <b>"User"</b>', "u@example.com"),
    Row(22, "Ünïcødé “curly” — dash", "draft", Decimal("0"),
        datetime(2025, 12, 31, 23, 59, tzinfo=UTC), None, "<e>@example.com"),
    Row(333, "plain", "archived", Decimal("0.5"), datetime(2024, 6, 1, tzinfo=UTC), None, None),
]  # fmt: skip
# What user_service.display_names gives for the rows' owners: the name, or the email.
OWNERS = {r.owner_id: r.owner_name or r.owner_email for r in ROWS if r.owner_name or r.owner_email}


def jinja_rows(**context: object) -> str:
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = money
    env.filters["date"] = minute
    return env.from_string(JINJA_ROWS).render(**context)


@pytest.mark.parametrize("can_write", [True, False])
@pytest.mark.parametrize("saved", [False, True])
@pytest.mark.parametrize("changeable", [set(), {1, 333}, {1, 22, 333}])
def test_rows_are_the_html_the_jinja_loop_wrote(
    can_write: bool, saved: bool, changeable: set[int]
) -> None:
    expected = jinja_rows(
        rows=ROWS, items_base="/items", changeable=changeable, can_write=can_write, saved=saved
    )
    html = render_item_rows(
        ROWS,
        base="/items",
        owners=OWNERS,
        changeable=changeable,
        can_write=can_write,
        saved=saved,
    )
    assert isinstance(html, Markup)
    assert str(html) == expected


def test_hostile_names_owners_and_base_are_escaped() -> None:
    html = str(
        render_item_rows(
            ROWS, base='/mount"<x>/items', owners=OWNERS, changeable={1}, can_write=True
        )
    )
    assert "<script>" not in html and "<b>" not in html and "<e>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;quoted&#39;" in html
    assert "a&amp;amp;b" in html  # an entity in a name is shown, not interpreted
    assert 'href="/mount&#34;&lt;x&gt;/items/1"' in html
    assert "Uma &lt;b&gt;&#34;User&#34;&lt;/b&gt;" in html
    assert "&lt;e&gt;@example.com" in html  # the email when the owner has no name
    assert '<td data-label="Owner">—</td>' in html  # neither


def test_links_and_actions_follow_the_viewer() -> None:
    html = str(
        render_item_rows(ROWS, base="/items", owners=OWNERS, changeable={22}, can_write=True)
    )
    assert '<a href="/items/1">' in html and '<a href="/items/333">' in html
    assert 'hx-get="/items/22/edit"' in html and 'hx-post="/items/22/delete"' in html
    assert 'value="22" form="bulk-form"' in html
    assert "/items/1/edit" not in html and "/items/333/delete" not in html
    assert html.count('name="ids"') == 1
    reader = str(
        render_item_rows(ROWS, base="/items", owners=OWNERS, changeable=set(), can_write=False)
    )
    assert "select-col" not in reader and "/edit" not in reader and "/delete" not in reader
    assert render_item_rows([], base="/items", owners={}, changeable=set(), can_write=True) == ""


@pytest.mark.parametrize(
    "price",
    ["0", "-0.01", "1234567.891", "9999999999.99", "-9999999999.99", "NaN", "Infinity", "1E+30"],
)
def test_prices_and_dates_need_no_escaping(price: str) -> None:
    """The rows print `money` and `minute` unescaped: only these characters can come out."""
    written = money(Decimal(price)) + minute(datetime(1, 1, 1, tzinfo=UTC))
    written += minute(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    assert set(written) <= set("$,.-: 0123456789NaInfity+E")
    assert escape_text(written) == written


# The items_region block templates/items/index.html had before the region moved to
# Python, verbatim but for its own block tags (its inner `item_rows` block became an
# `if` that trims the same whitespace).
JINJA_REGION = """\
{# The table parts are written in Python (app/web/table_html.py). #}
{{ table_state_inputs(view, "items-search") }}
<form id="bulk-form" method="post" action="{{ items_base }}/bulk" hx-post="{{ items_base }}/bulk"
      hx-confirm="Apply this action to the chosen items?">
  {% for key, value in view.state.params(page=1, cursor='').items() %}<input type="hidden" name="{{ key }}" value="{{ value }}">{% endfor %}
  {% if can_write and changeable_total %}
  <div class="bulk-bar" data-bulk-bar data-noun="item" data-nouns="items">
    <span class="bulk-count" data-bulk-count aria-live="polite">Select rows to act on them.</span>
    <label class="checkbox bulk-all"><input type="checkbox" name="scope" value="all" data-bulk-all
        data-count="{{ changeable_total }}" data-scope="{{ view.scope }}">
      All {{ '{:,}'.format(changeable_total) }}{% if not is_admin %} of your{% endif %} item{{ 's' if changeable_total != 1 }}{% if view.scope %} {{ view.scope }}{% endif %}</label>
    <select name="action" aria-label="Bulk action">
      <option value="activate" data-confirm="Mark {count} active?">Mark active</option>
      <option value="archive" data-confirm="Archive {count}?">Archive</option>
      <option value="draft" data-confirm="Move {count} to draft?">Move to draft</option>
      <option value="delete" data-confirm="Delete {count}? This cannot be undone.">Delete</option>
    </select>
    <button class="btn btn-sm" type="submit" data-focus-key="bulk-apply">Apply</button>
  </div>
  {% endif %}
</form>
{% if rows %}
{{ table_mobile_sort(view) }}
<div class="table-wrap">
  <table class="table stack items">
{{ table_header(view, select_all=can_write, extra='<th scope="col" class="actions-col"><span class="sr-only">Actions</span></th>'|safe) }}    <tbody>
      {# The rows are written in Python (app/web/item_rows.py): a Jinja loop cost more than the rest of the table. #}
{% if true %}{{ item_rows(rows, base=items_base, changeable=changeable, can_write=can_write, saved=saved) }}{% endif %}
    </tbody>
  </table>
</div>
{% else %}
<div class="empty">
  {% if view.scope %}
  <p><strong>No items {{ view.scope }}.</strong></p>
  <p>Check the spelling, try a shorter search, or
    <a href="{{ url_for('items.index') }}" hx-get="{{ url_for('items.index') }}" hx-push-url="true">show every item</a>.</p>
  {% else %}
  <p><strong>No items yet.</strong></p>
  {% if can_write %}<p><a class="btn" href="{{ items_base }}/new">Create the first one</a></p>{% endif %}
  {% endif %}
</div>
{% endif %}
{{ table_pager(view) }}
"""  # noqa: E501


def region_view(args: dict[str, str], rows: list[Row], total: int) -> TableView[Any]:
    state = TableState.from_args(SPEC, args)
    table = TableView(SPEC, state, lambda _q, _s: Page(rows, state.page, state.per_page, total))
    table.__dict__["base_url"] = "/items"  # what url_for gives, without a request
    return table


def jinja_region(table: TableView[Any], **context: Any) -> str:
    env = Environment(
        autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
    )
    env.globals.update(
        table_state_inputs=render_state_inputs,
        table_mobile_sort=render_mobile_sort,
        table_header=render_header,
        table_pager=render_pager,
        item_rows=functools.partial(render_item_rows, owners=OWNERS),
        url_for=lambda endpoint: table.base_url,
    )
    return env.from_string(JINJA_REGION).render(view=table, items_base="/items", **context)


REGION_CASES = [
    # args, rows shown, total, can_write, changeable, changeable_total, is_admin
    ({}, ROWS, 3, True, {1, 22}, 2, False),
    ({"q": "lamp", "status": "active", "sort": "price", "dir": "asc"}, ROWS, 3, True, {1}, 1, True),
    ({"page": "2", "per_page": "10"}, ROWS, 40, False, set(), 0, False),
    ({"q": HOSTILE}, [], 0, True, set(), 0, False),
    ({"status": "draft"}, [], 0, False, set(), 0, False),
    ({}, [], 0, True, set(), 0, False),
    ({}, [], 0, False, set(), 0, False),
    ({}, ROWS, 3, True, set(), 0, False),
]


@pytest.mark.parametrize(
    ("args", "rows", "total", "can_write", "changeable", "changeable_total", "is_admin"),
    REGION_CASES,
)
def test_region_is_the_html_the_jinja_block_wrote(
    args: dict[str, str],
    rows: list[Row],
    total: int,
    can_write: bool,
    changeable: set[int],
    changeable_total: int,
    is_admin: bool,
) -> None:
    context = {
        "rows": rows,
        "changeable": changeable,
        "can_write": can_write,
        "changeable_total": changeable_total,
        "is_admin": is_admin,
    }
    expected = jinja_region(region_view(args, rows, total), **context)
    table = region_view(args, rows, total)
    html = render_items_region(table, base="/items", owners=OWNERS, **context)
    assert isinstance(html, Markup)
    assert str(html) == expected
