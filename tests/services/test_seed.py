"""Demo data: deterministic rows, and the bulk-load path that rebuilds indexes and keys."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import inspect

from app.extensions import db
from app.repositories.items import ItemRepository
from app.services import seed


def test_rows_are_deterministic_and_match_between_paths() -> None:
    tuples = list(seed.item_tuples(3, [7, 8], first=5))
    lines = list(seed.copy_lines(3, [7, 8], first=5))
    assert tuples == list(seed.item_tuples(3, [7, 8], first=5))
    for row, line in zip(tuples, lines, strict=True):
        owner, name, description, status, price, created, _ = row
        fields = line.rstrip("\n").split("\t")
        assert fields[:5] == [str(owner), name, description, status, f"{price:.2f}"]
        assert fields[5].replace(" ", "T").replace("+00", "+00:00") == created.isoformat()


@pytest.mark.postgres
def test_bulk_load_rebuilds_indexes_and_foreign_key(
    pg_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seed, "_REBUILD_INDEXES_FROM", 10)
    with pg_app.app_context():
        before = {ix["name"] for ix in inspect(db.session.connection()).get_indexes("item")}
        with db.transaction() as session:
            report = seed.seed_demo(session, users=0, items=50, iterations=1000)
        assert report.items_created == 50 and ItemRepository(db.session).count_all() == 50
        inspector = inspect(db.session.connection())
        assert {ix["name"] for ix in inspector.get_indexes("item")} == before
        assert [fk["name"] for fk in inspector.get_foreign_keys("item")] == [
            "fk_item_owner_id_user_account"
        ]
