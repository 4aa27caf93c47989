"""The pager written in Python (app/web/pager.py): the HTML the Jinja macro wrote, for
first, middle, last, single and empty pages, page sizes and hostile search terms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jinja2 import Environment
from markupsafe import Markup

from app.core.listing import Page
from app.services.items import LISTING
from app.web.pager import render_pager
from app.web.tables import Column, TableSpec, TableState, TableView

# The macro templates/_macros/table.html had before the pager moved to Python, verbatim.
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

SPEC = TableSpec(
    endpoint="items.index",
    region_id="items-table",
    listing=LISTING,
    columns=(Column("name", "Name"), Column("created_at", "Created", first_direction="desc")),
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


def test_hostile_search_and_mount_point_are_escaped() -> None:
    table = view({"q": '"><script>alert(1)</script>', "page": "2"}, total=300, base='/a"<b>')
    html = str(render_pager(table))
    assert "<script>" not in html
    assert 'action="/a&#34;&lt;b&gt;"' in html
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html  # the kept search
    assert "&amp;q=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in html
