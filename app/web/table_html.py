"""The DataTable's search form, header row, sort chips, pager and state inputs as HTML,
written in Python.

A table region draws a few dozen links, each printed twice (href and hx-get); as Jinja
macros the header, chips and pager cost more than the rest of the region around the
rows. This is the HTML the `search_form`, `header`, `mobile_sort` and `pager` macros of
templates/_macros/table.html wrote, byte for byte (their sources are kept in
tests/web/test_table_html.py, which holds the two equal), escaped as Jinja's autoescape
escapes (app/web/html.py). Table templates call them as `table_search_form`,
`table_header`, `table_mobile_sort`, `table_pager`, `table_state_inputs` and
`table_region_attrs` (registered in app/web/__init__.py), with no macro between:
importing a macro template cost a page more than most of these parts do.

Every link is a real href (it works without JavaScript) and an hx-get that swaps only
the table region and pushes its URL. Only these GET links push: a row's form posts
somewhere that cannot be reloaded or gone back to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from app.web.html import escape_text
from app.web.tables import HeaderCell, PagerItem, TableView


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


def _header_cell(cell: HeaderCell) -> str:
    column = cell.column
    numeric = ' class="num"' if column.numeric else ""
    opened = f'    <th scope="col" aria-sort="{escape_text(cell.aria_sort)}"{numeric}>\n'
    label = escape_text(column.label)
    if not cell.url:
        return f"{opened}{label}    </th>\n"
    url, key = escape_text(cell.url), escape_text(column.key)
    sorted_ = " is-sorted" if cell.aria_sort != "none" else ""
    return (
        f'{opened}        <a href="{url}" hx-get="{url}" hx-push-url="true"'
        f' data-focus-key="sort-{key}" class="sort-link{sorted_}"\n'
        f'           title="Sort by {escape_text(column.label.lower())}">{label}'
        f'<span class="sort-indicator" aria-hidden="true">{escape_text(cell.indicator)}</span>'
        "</a>\n    </th>\n"
    )


def render_header(view: TableView[Any], *, select_all: bool = False, extra: str = "") -> Markup:
    """The `<thead>`: a select-all box for writers, a sort link per sortable column, and
    `extra` (the caller's own cells) at the end: Markup goes in as it is, plain text is
    escaped, so a template can never pass a value through unescaped by mistake."""
    select = (
        '<th scope="col" class="select-col"><input type="checkbox" data-select-all'
        ' aria-label="Select all rows on this page"></th>'
        if select_all
        else ""
    )
    cells = "".join(map(_header_cell, view.headers))
    cells += str(escape(extra))  # str: Markup on the right would escape the cells
    return Markup(f"<thead>\n  <tr>\n{select}{cells}  </tr>\n</thead>\n")  # noqa: S704


def render_mobile_sort(view: TableView[Any]) -> Markup:
    """The sort chips phones show instead of the header row."""
    chips = []
    for cell in view.sortable_headers:
        url, key = escape_text(cell.url), escape_text(cell.column.key)
        on = cell.aria_sort != "none"
        chips.append(
            f'  <a href="{url}" hx-get="{url}" hx-push-url="true" data-focus-key="chip-{key}"'
            f' class="chip{" is-sorted" if on else ""}">{escape_text(cell.column.label)}'
            f"{' ' + escape_text(cell.indicator) if on else ''}</a>\n"
        )
    return Markup(  # noqa: S704 - every value above is escaped
        '<div class="mobile-sort" aria-label="Sort">\n  <span class="muted">Sort:</span>\n'
        f"{''.join(chips)}</div>\n"
    )


def render_state_inputs(view: TableView[Any], form_id: str) -> Markup:
    """Hidden inputs that tie the current sort and page size to the search form outside
    the region (`form_id`)."""
    form, state = escape_text(form_id), view.state
    html = (
        f'<input type="hidden" name="sort" value="{escape_text(state.sort)}" form="{form}">\n'
        f'<input type="hidden" name="dir" value="{escape_text(state.direction)}" form="{form}">\n'
    )
    if state.per_page != view.spec.default_per_page:
        html += f'<input type="hidden" name="per_page" value="{state.per_page}" form="{form}">'
    return Markup(html)  # noqa: S704 - every value above is escaped or an int


def render_region_attrs(view: TableView[Any]) -> Markup:
    """The attributes of a table region's element: its id, and the target and swap its
    links and forms inherit (htmx replaces the whole region)."""
    region = escape_text(view.spec.region_id)
    return Markup(  # noqa: S704 - the id is escaped
        f'id="{region}" class="datatable" hx-target:inherited="#{region}"\n'
        'hx-swap:inherited="outerHTML"'
    )


def render_search_form(
    view: TableView[Any],
    form_id: str,
    placeholder: str = "Search",
    filters: Sequence[tuple[str, str, Sequence[tuple[Any, Any]]]] | None = None,
) -> Markup:
    """The search box and filter selects above a table (`filters`: name, label and the
    (value, text) choices of each), submitted into the table region as the user types."""
    base, region = escape_text(view.base_url), escape_text(view.spec.region_id)
    hint, chosen = escape_text(placeholder), view.state.filters
    selects = []
    for name, label, choices in filters or ():
        options = "".join(
            f'<option value="{escape_text(str(value))}" '
            f"{'selected' if chosen.get(name) == value else ''}>{escape_text(str(text))}</option>"
            for value, text in choices
        )
        selects.append(
            f'  <select name="{escape_text(name)}" aria-label="{escape_text(label)}">\n'
            f'    <option value="">{escape_text(label)}: all</option>\n'
            f"{options}  </select>\n"
        )
    return Markup(  # noqa: S704 - every value above is escaped or an int
        f'<form id="{escape_text(form_id)}" class="table-search" method="get" action="{base}"'
        ' role="search"\n'
        f'      hx-get="{base}" hx-target="#{region}" hx-swap="outerHTML"\n'
        '      hx-push-url="true" hx-trigger="submit, input delay:350ms, change"'
        ' hx-sync="this:replace">\n'
        f'  <input type="search" name="q" value="{escape_text(view.state.q)}"'
        f' placeholder="{hint}" aria-label="{hint}" maxlength="{view.spec.max_search_length}"'
        ' autocomplete="off">\n'
        f"{''.join(selects)}"
        '  <noscript><button class="btn btn-secondary" type="submit">Search</button></noscript>\n'
        "</form>\n"
    )
