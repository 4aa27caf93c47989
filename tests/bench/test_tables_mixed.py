"""bench/tables.py's mixed browsing: thousands of distinct URLs, every one a real page."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from bench.tables import MIXED_PAGES, mixed_paths, parse_args
from tests.factories import make_items


def test_the_mixed_urls_are_distinct_and_each_answers_a_page_of_rows(
    app: Flask, as_user: FlaskClient, accounts: dict[str, int]
) -> None:
    with app.app_context(), db.transaction() as session:
        names = [f"{w} Falcon {n}" for n in range(30) for w in ("Amber", "Misty")]
        make_items(session, accounts["user"], [(name, "9.99", "active") for name in names])
    browse, search = mixed_paths()
    paths = browse + search
    assert len(set(paths)) == len(paths) > 3_000
    assert all("q=" not in p for p in browse) and all("q=" in p for p in search)
    assert {p.rsplit("page=", 1)[1] for p in paths} == {str(n) for n in range(1, MIXED_PAGES + 1)}
    for path in [*paths[::97], "/items?q=falcon&sort=price&dir=desc&page=1"]:
        response = as_user.get(path)
        assert response.status_code == 200, path
    first = as_user.get("/items?q=amber&sort=name&dir=asc&page=1").get_data(as_text=True)
    assert "Amber Falcon 0" in first and "Misty Falcon" not in first


def test_mixed_browsing_warms_up_longer_than_a_single_url() -> None:
    """Mixed browsing is measured once the workers have seen its unsearched pages (the
    caches' steady state); a single URL needs one view for that."""
    for argv in ([], ["--quick"]):
        args = parse_args(argv)
        assert args.mixed_warmup >= 2 * args.warmup
    assert parse_args(["--quick", "--mixed-warmup", "30"]).mixed_warmup == 30
