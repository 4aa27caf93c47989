"""The items pages: the DataTable, create, view, inline edit, delete, bulk actions, CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, flash, request, stream_with_context, url_for
from flask_login import current_user
from markupsafe import Markup

from app.errors import ValidationFailed
from app.extensions import db
from app.htmx import htmx, render
from app.models.item import ITEM_STATUSES
from app.models.user import User
from app.policy import policy
from app.security import current_actor
from app.services import items as item_service
from app.services import users as user_service
from app.services.items import ItemCreate, ItemPatch, TableRow
from app.services.validation import validate
from app.settings import get_settings
from app.templating import path_for
from app.web.item_rows import render_item_rows, render_items_region
from app.web.regions import cached_region, viewer_key
from app.web.responses import see_other
from app.web.tables import (
    Column,
    TableSpec,
    TableState,
    TableView,
    build_view,
    current_table_args,
    encode_params,
)

bp = Blueprint("items", __name__, url_prefix="/items")
bp.add_app_template_global(render_item_rows, "item_rows")

SPEC = TableSpec(
    endpoint="items.index",
    region_id="items-table",
    listing=item_service.LISTING,
    columns=(
        Column("name", "Name"),
        Column("status", "Status"),
        Column("price", "Price", numeric=True, first_direction="desc"),
        Column("owner", "Owner"),
        Column("created_at", "Created", first_direction="desc"),
    ),
    filters=("status",),
    nouns=("item", "items"),
)
FRAGMENTS = {"items-table": "items_table"}
REGION_TAGS = (
    "items",
    "user-names",
)  # the rows, and their owners' names (app/services/invalidation.py)
CSV_COLUMNS = (
    "id",
    "name",
    "status",
    "price",
    "owner_id",
    "created_at",
    "updated_at",
    "description",
)


def _me() -> User:
    user: User = current_user._get_current_object()
    return user


def table_view(args: Mapping[str, str]) -> TableView[TableRow]:
    """The items table for a query string: one query for the rows, the total and the
    owners' names from the cache."""
    shared = get_settings().table_cache_seconds > 0  # as for the regions: see Settings
    return build_view(
        SPEC,
        args,
        lambda query, seek: item_service.table_page(db.session, query, seek, shared_cache=shared),
    )


# How werkzeug's URL map encodes query arguments (werkzeug.urls._urlencode), so the
# export link is the one url_for built.
_QUERY_SAFE = "!$'()*,/:;?@"


def _export_query(view: TableView[TableRow]) -> str:
    """The query of the Export CSV link (the table's state): url_for with the state as
    arguments cost twice what the remembered path and this do (templates/items/index.html)."""
    return urlencode(view.state.params(page=1, cursor=""), safe=_QUERY_SAFE)


def _fields(form: Mapping[str, str]) -> dict[str, str]:
    """The item fields of a submitted form (its CSRF token and buttons are not item data)."""
    return {name: form[name] for name in ItemCreate.model_fields if name in form}


def _rows_context(rows: list[TableRow]) -> dict[str, Any]:
    """What the row template needs beyond the rows, worked out once per response."""
    me = _me()
    return {
        "rows": rows,
        "items_base": path_for("items.index"),  # row links are built from it
        "owners": user_service.display_names(db.session, (row.owner_id for row in rows)),
        "changeable": item_service.changeable_ids(me, rows),
        "can_write": me.can_write,
        "statuses": ITEM_STATUSES,
    }


def _region(view: TableView[TableRow], me: User) -> Markup:
    """The inside of the table region, from what the rows need (`_rows_context`, as for
    one row) plus the bulk bar's count."""
    rows = _rows_context(view.page.items)
    return render_items_region(
        view,
        rows["rows"],
        base=rows["items_base"],
        owners=rows["owners"],
        changeable=rows["changeable"],
        can_write=rows["can_write"],
        changeable_total=item_service.count_changeable(db.session, me, view.state.list_query()),
        is_admin=me.is_admin,
    )


def _render_table(args: Mapping[str, str], *, status: int = 200, **extra: Any) -> Response:
    view = table_view(args)
    me = _me()
    region = cached_region(
        view,
        viewer=viewer_key(me),
        tags=REGION_TAGS,
        render=lambda: _region(view, me),
    )
    return render(
        "items/index.html",
        fragments=FRAGMENTS,
        out_of_band=("export_link",),  # the Export CSV link follows the table's state
        status=status,
        view=view,
        region=region,
        can_write=me.can_write,
        items_base=view.base_url,
        export_query=_export_query(view),
        status_choices=[(s, s.title()) for s in ITEM_STATUSES],
        **extra,
    )


@bp.get("")
@policy("read")
def index() -> Response:
    """The items table (full page, or just the table region for htmx)."""
    return _render_table(request.args)


@bp.get("/new")
@policy("write")
def new() -> Response:
    """The create form."""
    return render(
        "items/form.html",
        fragments={"item-form": "item_form"},
        item=None,
        values={"status": "draft"},
        errors={},
        statuses=ITEM_STATUSES,
    )


@bp.post("")
@policy("write")
def create() -> Response:
    """Create an item owned by the current user."""
    form = request.form
    try:
        fields = validate(ItemCreate, _fields(form))
        with db.transaction() as session:
            item = item_service.create_item(session, _me(), fields, actor=current_actor())
    except ValidationFailed as exc:
        return render(
            "items/form.html",
            fragments={"item-form": "item_form"},
            status=422,
            item=None,
            values=form,
            errors=exc.fields,
            statuses=ITEM_STATUSES,
        )
    flash(f"“{item.name}” has been created.", "success")
    return see_other(url_for("items.show", item_id=item.id))


@bp.get("/<int:item_id>")
@policy("read")
def show(item_id: int) -> Response:
    """One item."""
    item = item_service.get_item(db.session, item_id)
    owners = user_service.display_names(db.session, [item.owner_id])
    return render(
        "items/show.html",
        item=item,
        owner=owners.get(item.owner_id, "—"),
        can_change=item_service.can_change(_me(), item),
        can_buy=_me().can_write and item.price > 0,
        payments_on=get_settings().payments_configured,
    )


def _row(item_id: int, *, editing: bool = False, status: int = 200, **extra: Any) -> Response:
    """One table row, shown or as the inline editor, as an htmx fragment."""
    found = item_service.table_row(db.session, item_id)
    return render(
        "items/index.html",
        **_rows_context([found]),
        item=found,
        fragments={f"item-{item_id}": "item_edit_row" if editing else "item_rows"},
        status=status,
        **extra,
    )


def _inline(item_id: int) -> bool:
    """Whether this request swaps the item's table row (the inline editor), decided before
    anything is written: any other request gets a page, never a fragment it did not ask for."""
    return htmx().targets(f"item-{item_id}")


def _form_page(item: Any, values: Any, errors: dict[str, str], *, status: int = 200) -> Response:
    """The edit page (or its form, for the page's own htmx submit)."""
    return render(
        "items/form.html",
        fragments={"item-form": "item_form"},
        status=status,
        item=item,
        values=values,
        errors=errors,
        statuses=ITEM_STATUSES,
    )


@bp.get("/<int:item_id>/row")
@policy("read")
def row(item_id: int) -> Response:
    """A row in display mode (cancelling an inline edit); any other request gets the item page."""
    if not _inline(item_id):
        return see_other(url_for("items.show", item_id=item_id))
    return _row(item_id)


@bp.get("/<int:item_id>/edit")
@policy("write")
def edit(item_id: int) -> Response:
    """The row turned into inputs (inline edit); a plain request gets the edit page."""
    item = item_service.get_item_for_change(db.session, _me(), item_id)
    values = {
        "name": item.name,
        "status": item.status,
        "price": item.price,
        "description": item.description,
    }
    if not _inline(item.id):
        return _form_page(item, values, {})
    return _row(item.id, editing=True, values=values, errors={})


@bp.post("/<int:item_id>")
@policy("write")
def update(item_id: int) -> Response:
    """Save an inline edit (or the edit page)."""
    item = item_service.get_item_for_change(db.session, _me(), item_id)
    inline, form = _inline(item_id), request.form
    try:
        changes = validate(ItemPatch, _fields(form))
        with db.transaction() as session:
            item_service.update_item(session, item, changes, actor=current_actor())
    except ValidationFailed as exc:
        if not inline:
            return _form_page(item, form, exc.fields, status=422)
        return _row(item.id, editing=True, status=422, values=form, errors=exc.fields)
    if not inline:
        flash("Saved.", "success")
        return see_other(url_for("items.show", item_id=item.id))
    return _row(item.id, saved=True)


@bp.get("/<int:item_id>/delete")
@policy("write")
def confirm_delete(item_id: int) -> Response:
    """Ask before deleting (the row's Delete link without JavaScript lands here)."""
    item = item_service.get_item_for_change(db.session, _me(), item_id)
    return render("items/delete.html", item=item)


@bp.post("/<int:item_id>/delete")
@policy("write")
def delete(item_id: int) -> Response:
    """Delete after confirmation; htmx gets the refreshed table for the page the user is on."""
    item = item_service.get_item_for_change(db.session, _me(), item_id)
    name = item.name
    with db.transaction() as session:
        item_service.delete_item(session, item, actor=current_actor())
    flash(f"“{name}” has been deleted.", "success")
    if not htmx().request:
        return see_other(url_for("items.index"))
    response = _render_table(current_table_args())
    response.headers["HX-Retarget"] = "#items-table"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


@bp.post("/bulk")
@policy("write")
def bulk() -> Response:
    """Apply an action to the selected rows, or to every row matching the current filter."""
    form = request.form
    state = TableState.from_args(SPEC, form)
    everything = form.get("scope") == "all"
    ids = (
        None if everything else [int(i) for i in form.getlist("ids") if i.isascii() and i.isdigit()]
    )
    if not everything and not ids:
        flash("Select at least one item first.", "warning")
        return _bulk_response(form)
    try:
        with db.transaction() as session:
            count = item_service.bulk_action(
                session,
                _me(),
                form.get("action", ""),
                ids=ids,
                query=state.list_query() if everything else None,
                actor=current_actor(),
            )
    except ValidationFailed as exc:
        flash("; ".join(exc.fields.values()), "error")
        return _bulk_response(form)
    flash(BULK_DONE[form.get("action", "")].format(count=_count_of(count)), "success")
    return _bulk_response(form)


BULK_DONE = {
    "delete": "Deleted {count}.",
    "activate": "Marked {count} active.",
    "archive": "Archived {count}.",
    "draft": "Moved {count} to draft.",
}


def _count_of(count: int) -> str:
    """ "1 item", "42 items", "1,234 items"."""
    return f"{count:,} item{'' if count == 1 else 's'}"


def _is_number(raw: str) -> bool:
    """ASCII digits only: int() also takes "²" and other Unicode digits, and then fails."""
    return raw.isascii() and raw.isdigit()


def _bulk_response(form: Mapping[str, str]) -> Response:
    state = TableState.from_args(SPEC, form)
    params = state.params(page=1, cursor="")
    location = url_for("items.index") + "?" + encode_params(params)
    if not htmx().request:
        return see_other(location)
    response = _render_table({k: str(v) for k, v in params.items()})
    response.headers["HX-Push-Url"] = location
    return response


@bp.get("/export.csv")
@policy("read")
def export_csv() -> Response:
    """Exactly the current filtered and sorted view, streamed row by row from one snapshot."""
    query = TableState.from_args(SPEC, request.args).list_query()

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        with db.snapshot() as session:
            for item in item_service.export_rows(session, query):
                writer.writerow([_csv_value(getattr(item, c)) for c in CSV_COLUMNS])
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="items.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


# Where a spreadsheet may start a cell: the start, or after any separator it may split on
# (its locale's, or one chosen on import), whatever the quoting; there a formula could begin.
_FORMULA_START = re.compile(r"(?:^|(?<=[,;|\t\r\n]))(?=[ ]*[=+\-@\t\r])")


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return _FORMULA_START.sub("'", value)  # keep spreadsheets from running formulas
    return value
