"""The table parts written in Python (app/web/table_html.py): the HTML the Jinja macros
wrote, for first, middle, last, single and empty pages, sorts, page sizes and hostile
search terms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jinja2 import Environment
from markupsafe import Markup

from app.core.listing import Page, opposite
from app.services.items import LISTING
from app.web.table_html import (
    render_header,
    render_mobile_sort,
    render_pager,
    render_region_attrs,
    render_search_form,
    render_state_inputs,
)
from app.web.tables import Column, TableSpec, TableState, TableView

# The macros templates/_macros/table.html had before they moved to Python (the file is
# gone), verbatim.
JINJA_PAGER = """\
{% macro pager(view) %}
{% set controls = view.pager %}
<nav class="pager" aria-label="Pages">
  <span class="muted pager-summary">{{ view.summary }}</span>
  {% if view.page.pages > 1 %}
  <span class="pager-links">
    {% for b in controls.before %}{% if b.url %}<a href="{{ b.url }}" hx-get="{{ b.url }}" hx-push-url="true" data-focus-key="pager-{{ b.aria_label }}" class="btn btn-sm btn-secondary"{% if b.rel %} rel="{{ b.rel }}"{% endif %} aria-label="{{ b.aria_label }}">{{ b.label }}</a>{% else %}<span class="btn btn-sm btn-secondary is-disabled" aria-disabled="true" tabindex="-1" data-focus-key="pager-{{ b.aria_label }}">{{ b.label }}</span>{% endif %}
    {% endfor %}
    <span class="page-numbers">
    {% for b in controls.numbers %}{% if b.gap %}<span class="gap" aria-hidden="true">…</span>{% elif b.current %}<span class="btn btn-sm is-current" aria-current="page" tabindex="-1" data-focus-key="pager-{{ b.aria_label }}">{{ b.label }}</span>{% else %}<a href="{{ b.url }}" hx-get="{{ b.url }}" hx-push-url="true" data-focus-key="pager-{{ b.aria_label }}" class="btn btn-sm btn-secondary" aria-label="{{ b.aria_label }}">{{ b.label }}</a>{% endif %}
    {% endfor %}
    </span>
    {% for b in controls.after %}{% if b.url %}<a href="{{ b.url }}" hx-get="{{ b.url }}" hx-push-url="true" data-focus-key="pager-{{ b.aria_label }}" class="btn btn-sm btn-secondary"{% if b.rel %} rel="{{ b.rel }}"{% endif %} aria-label="{{ b.aria_label }}">{{ b.label }}</a>{% else %}<span class="btn btn-sm btn-secondary is-disabled" aria-disabled="true" tabindex="-1" data-focus-key="pager-{{ b.aria_label }}">{{ b.label }}</span>{% endif %}
    {% endfor %}
  </span>
  {% endif %}
  {% if view.page.total > view.spec.per_page_choices[0] %}
  <form class="per-page" method="get" action="{{ view.base_url }}" hx-get="{{ view.base_url }}" hx-trigger="change" hx-push-url="true">
    {% for key, value in view.kept_params %}<input type="hidden" name="{{ key }}" value="{{ value }}">{% endfor %}
    <label>Rows per page
      <select name="per_page" data-focus-key="per-page">
        {% for n in view.spec.per_page_choices %}<option value="{{ n }}"{% if n == view.state.per_page %} selected{% endif %}>{{ n }}</option>{% endfor %}
      </select>
    </label>
    <noscript><button class="btn btn-sm btn-secondary" type="submit">Apply</button></noscript>
  </form>
  {% endif %}
</nav>
{% endmacro %}"""  # noqa: E501

JINJA_SEARCH_FORM = """\
{% macro search_form(view, form_id, placeholder="Search", filters=None) %}
<form id="{{ form_id }}" class="table-search" method="get" action="{{ view.base_url }}" role="search"
      hx-get="{{ view.base_url }}" hx-target="#{{ view.spec.region_id }}" hx-swap="outerHTML"
      hx-push-url="true" hx-trigger="submit, input delay:350ms, change" hx-sync="this:replace">
  <input type="search" name="q" value="{{ view.state.q }}" placeholder="{{ placeholder }}" aria-label="{{ placeholder }}" maxlength="{{ view.spec.max_search_length }}" autocomplete="off">
  {% if filters %}{% for name, label, choices in filters %}
  <select name="{{ name }}" aria-label="{{ label }}">
    <option value="">{{ label }}: all</option>
    {% for value, text in choices %}<option value="{{ value }}" {% if view.state.filters.get(name) == value %}selected{% endif %}>{{ text }}</option>{% endfor %}
  </select>
  {% endfor %}{% endif %}
  <noscript><button class="btn btn-secondary" type="submit">Search</button></noscript>
</form>
{% endmacro %}"""  # noqa: E501

JINJA_HEADER = """\
{% macro header(view, select_all=False) %}
<thead>
  <tr>
    {% if select_all %}<th scope="col" class="select-col"><input type="checkbox" data-select-all aria-label="Select all rows on this page"></th>{% endif %}
    {% for cell in view.headers %}
    <th scope="col" aria-sort="{{ cell.aria_sort }}"{% if cell.column.numeric %} class="num"{% endif %}>
      {% if cell.url %}
        <a href="{{ cell.url }}" hx-get="{{ cell.url }}" hx-push-url="true" data-focus-key="sort-{{ cell.column.key }}" class="sort-link{% if cell.aria_sort != 'none' %} is-sorted{% endif %}"
           title="Sort by {{ cell.column.label|lower }}">{{ cell.column.label }}<span class="sort-indicator" aria-hidden="true">{{ cell.indicator }}</span></a>
      {% else %}{{ cell.column.label }}{% endif %}
    </th>
    {% endfor %}
    {% if caller %}{{ caller() }}{% endif %}
  </tr>
</thead>
{% endmacro %}"""  # noqa: E501

JINJA_MOBILE_SORT = """\
{% macro mobile_sort(view) %}
<div class="mobile-sort" aria-label="Sort">
  <span class="muted">Sort:</span>
  {% for cell in view.sortable_headers %}
  <a href="{{ cell.url }}" hx-get="{{ cell.url }}" hx-push-url="true" data-focus-key="chip-{{ cell.column.key }}" class="chip{% if cell.aria_sort != 'none' %} is-sorted{% endif %}">{{ cell.column.label }}{% if cell.aria_sort != 'none' %} {{ cell.indicator }}{% endif %}</a>
  {% endfor %}
</div>
{% endmacro %}"""  # noqa: E501

JINJA_STATE_INPUTS = """\
{% macro state_inputs(view, form_id) %}
<input type="hidden" name="sort" value="{{ view.state.sort }}" form="{{ form_id }}">
<input type="hidden" name="dir" value="{{ view.state.direction }}" form="{{ form_id }}">
{% if view.state.per_page != view.spec.default_per_page %}<input type="hidden" name="per_page" value="{{ view.state.per_page }}" form="{{ form_id }}">{% endif %}
{% endmacro %}"""  # noqa: E501

JINJA_REGION_ATTRS = """\
{% macro region_attrs(view) -%}
id="{{ view.spec.region_id }}" class="datatable" hx-target:inherited="#{{ view.spec.region_id }}"
hx-swap:inherited="outerHTML"
{%- endmacro %}"""

SPEC = TableSpec(
    endpoint="items.index",
    region_id="items-table",
    listing=LISTING,
    columns=(
        Column("name", "Name <&>"),
        Column("status", "Status"),
        Column("price", "Price", numeric=True, first_direction="desc"),
        Column("owner", "Owner"),  # not sortable here: a plain label
        Column("created_at", "Created", first_direction="desc"),
    ),
    filters=("status",),
    nouns=("item", "items"),
)


class Row:
    def __init__(self, n: int) -> None:
        self.id = n
        self.name = f"Item <{n}> & 'co'"
        self.created_at = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(minutes=n)


def view(args: dict[str, str], *, total: int, base: str = "/items") -> TableView[Any]:
    state = TableState.from_args(SPEC, args)
    start = (state.page - 1) * state.per_page
    rows = [Row(n) for n in range(start + 1, min(start + state.per_page, total) + 1)]
    table = TableView(
        SPEC, state, lambda _query, _seek: Page(rows, state.page, state.per_page, total)
    )
    table.__dict__["base_url"] = base  # what url_for gives, without a request
    return table


def jinja_pager(table: TableView[Any]) -> str:
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(JINJA_PAGER).module.pager(table)  # type: ignore[attr-defined, no-any-return]


CASES = [
    ({}, 0),
    ({}, 1),
    ({}, 10),
    ({}, 25),
    ({}, 26),
    ({}, 1_000_003),
    ({"page": "2"}, 60),
    ({"page": "3"}, 60),
    ({"page": "7", "sort": "name", "dir": "asc"}, 1_000),
    ({"page": "40"}, 1_000),
    ({"page": "40001", "cursor": "last"}, 1_000_003),
    ({"per_page": "100", "status": "draft"}, 5_000),
    ({"per_page": "10"}, 9),
    ({"q": "<script>\"x\" & 'y'</script>", "status": "archived", "page": "2"}, 300),
    ({"q": "Ünïcødé “curly” / ? # %"}, 60),
]


@pytest.mark.parametrize(("args", "total"), CASES)
def test_pager_is_the_html_the_macro_wrote(args: dict[str, str], total: int) -> None:
    table = view(args, total=total)
    html = render_pager(table)
    assert isinstance(html, Markup)
    assert str(html) == jinja_pager(view(args, total=total))


@pytest.mark.parametrize(("args", "total"), CASES)
def test_page_and_sort_links_are_the_urls_of_their_state(args: dict[str, str], total: int) -> None:
    """Links are built from shared parts of the state's URL: each must be the URL
    TableView.url gives for its state."""
    table = view(args, total=total)
    for number, cursor in ((1, ""), (2, ""), (3, "a.WyJ4IiwxXQ.25"), (9, "last"), (4, "a b/?&")):
        assert table.page_url(number, cursor) == table.url(page=number, cursor=cursor)
    state = table.state
    for column in SPEC.columns:
        if not SPEC.sorts(column):
            assert column.key not in table.sort_urls
            continue
        flip = column.key == state.sort
        direction = opposite(state.direction) if flip else column.first_direction
        expected = table.url(sort=column.key, direction=direction, page=1, cursor="")
        assert table.sort_urls[column.key] == expected


def test_hostile_search_and_mount_point_are_escaped() -> None:
    table = view({"q": '"><script>alert(1)</script>', "page": "2"}, total=300, base='/a"<b>')
    html = str(render_pager(table))
    assert "<script>" not in html
    assert 'action="/a&#34;&lt;b&gt;"' in html
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html  # the kept search
    assert "&amp;q=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in html


def jinja_macros() -> Any:
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(
        JINJA_HEADER + JINJA_MOBILE_SORT + JINJA_STATE_INPUTS + JINJA_REGION_ATTRS
    )


SORTS = [
    {},
    {"sort": "name", "dir": "asc"},
    {"sort": "price"},
    {"sort": "created_at", "dir": "asc"},
]
EXTRA = '<th scope="col" class="actions-col"><span class="sr-only">Actions</span></th>'


@pytest.mark.parametrize("args", SORTS)
@pytest.mark.parametrize("select_all", [False, True])
def test_header_is_the_html_the_macro_wrote(args: dict[str, str], select_all: bool) -> None:
    table = view({**args, "q": "a&b"}, total=60)
    template = jinja_macros()
    plain = template.module.header(table, select_all=select_all)
    called = template.environment.from_string(
        JINJA_HEADER + "{% call header(view, select_all=s) %}" + EXTRA + "{% endcall %}"
    ).render(view=table, s=select_all)
    empty_call = template.environment.from_string(
        JINJA_HEADER + "{% call header(view, select_all=s) %}{% endcall %}"
    ).render(view=table, s=select_all)
    assert str(render_header(table, select_all=select_all)) == plain
    assert str(render_header(table, select_all=select_all, extra=Markup(EXTRA))) == called
    assert str(render_header(table, select_all=select_all, extra="")) == empty_call
    escaped = str(render_header(table, select_all=select_all, extra=EXTRA))  # plain text
    assert "&lt;th scope=&#34;col&#34;" in escaped and EXTRA not in escaped


@pytest.mark.parametrize("args", SORTS)
def test_sort_chips_are_the_html_the_macro_wrote(args: dict[str, str]) -> None:
    table = view({**args, "q": "<x>"}, total=60)
    assert str(render_mobile_sort(table)) == jinja_macros().module.mobile_sort(table)


def test_header_links_sort_and_escape() -> None:
    html = str(render_header(view({"sort": "name", "dir": "asc", "q": '"<q>'}, total=60)))
    assert 'aria-sort="ascending"' in html and "Name &lt;&amp;&gt;" in html
    assert 'title="Sort by name &lt;&amp;&gt;"' in html
    assert "/items?sort=name&amp;dir=desc&amp;q=%22%3Cq%3E" in html  # clicking flips it
    assert "<q>" not in html and "Owner    </th>" in html  # no link on a column that does not sort


@pytest.mark.parametrize("args", [*SORTS, {"per_page": "100"}, {"per_page": "10", "q": "x"}])
def test_state_inputs_and_region_attributes_are_the_html_the_macros_wrote(
    args: dict[str, str],
) -> None:
    table = view(args, total=60)
    macros = jinja_macros().module
    for form_id in ("items-search", 'x"><b>'):
        assert str(render_state_inputs(table, form_id)) == macros.state_inputs(table, form_id)
    assert str(render_region_attrs(table)) == macros.region_attrs(table)


STATUS_CHOICES = [("draft", "Draft"), ("active", "Active"), ("archived", "Archived")]
FILTER_SETS: list[Any] = [
    None,
    [],
    [("status", "Status", STATUS_CHOICES)],
    [("status", "Status", STATUS_CHOICES), ("kind", 'Kind "<&>"', [("a&b", "<b>A</b>")])],
]


@pytest.mark.parametrize("filters", FILTER_SETS)
@pytest.mark.parametrize(
    "args",
    [{}, {"status": "active", "q": "lamp"}, {"q": "<script>\"x\" & 'y'</script>"}],
)
def test_search_form_is_the_html_the_macro_wrote(args: dict[str, str], filters: Any) -> None:
    table = view(args, total=60, base="/mount/<x>&items")
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    macro = env.from_string(JINJA_SEARCH_FORM).module.search_form  # type: ignore[attr-defined]
    expected = macro(table, "items-search", placeholder='Name "or" <id>', filters=filters)

    html = render_search_form(table, "items-search", 'Name "or" <id>', filters)

    assert isinstance(html, Markup) and html == expected
    assert "<script>" not in html and "<b>" not in html
