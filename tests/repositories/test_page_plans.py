"""What PostgreSQL does for a searched or skipping page: its ids come off a sort index that
carries the searched column (so it can answer alone), and the table is read for the page's
rows only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text

from app.core.listing import ListQuery
from app.extensions import db
from app.models import Item, User
from app.repositories.items import ItemRepository

pytestmark = pytest.mark.postgres


def _plan_of_page(query: ListQuery) -> list[dict[str, Any]]:
    """The plan nodes of the statement the items table runs for `query`."""
    repo = ItemRepository(db.session)
    connection = db.session.connection()
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        repo.list_rows(repo.table_columns(), query, total=1000)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    statement, params = seen[-1]
    # A small table would be scanned whole; a big one would not be: plan as for a big one.
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    connection.execute(text("SET LOCAL enable_bitmapscan = off"))
    raw = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params).scalar_one()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    nodes: list[dict[str, Any]] = []
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (ListQuery(sort="price", direction="desc", q="lamp", page=3), "ix_item_price_id"),
        (ListQuery(sort="name", q="LAMP"), "ix_item_name_id"),
        (ListQuery(sort="id", direction="desc", q="lamp", page=2), "ix_item_id_searched"),
        (ListQuery(sort="created_at", direction="desc", page=20), "ix_item_created_at_id"),
    ],
)
def test_page_ids_come_off_a_sort_index_alone(pg_app: Flask, query: ListQuery, index: str) -> None:
    with pg_app.app_context():
        owner = User(email="owner@example.com", name="Owner", role="user")
        db.session.add(owner)
        db.session.flush()
        db.session.add_all(Item(owner_id=owner.id, name=f"Lamp {n}", price=n) for n in range(1, 40))
        db.session.flush()
        nodes = _plan_of_page(query)
        scans = {(n["Node Type"], n.get("Index Name")) for n in nodes if "Scan" in n["Node Type"]}
        # Off the sort index, which carries the searched column, so it can answer alone.
        # Whether the planner calls that an index-only scan depends on how much of this
        # test table (emptied by rolled-back tests) autovacuum has marked all-visible yet.
        assert scans & {("Index Only Scan", index), ("Index Scan", index)}, scans
        definition = db.session.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"), {"name": index}
        ).scalar_one()
        assert "INCLUDE (name_key)" in definition, definition
        # The rows shown are then looked up by id (the primary key, or the id index that
        # carries name_key: either holds every id), one per id picked.
        assert scans & {("Index Scan", "pk_item"), ("Index Scan", "ix_item_id_searched")}, scans
