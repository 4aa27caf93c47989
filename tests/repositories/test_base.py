"""BaseRepository on SQLite and PostgreSQL: CRUD, units of work, sorting, pagination."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.core.listing import MAX_PER_PAGE, ListQuery, Seek, sort_key
from app.extensions import db
from app.models import Item, User
from app.repositories.base import QueryError, UnknownSortError
from app.repositories.items import ItemRepository
from app.repositories.users import UserRepository


def _owner() -> User:
    return UserRepository(db.session).add(
        User(email="owner@example.com", name="Owner", role="user")
    )


def _items(owner: User, names_prices: list[tuple[str, str]]) -> list[Item]:
    repo = ItemRepository(db.session)
    return repo.add_all(
        [
            Item(owner_id=owner.id, name=n, price=Decimal(p), status="active")
            for n, p in names_prices
        ]
    )


def test_crud_round_trip(any_app: Flask) -> None:
    with any_app.app_context():
        repo = ItemRepository(db.session)
        with db.transaction():
            owner = _owner()
            item = repo.add(Item(owner_id=owner.id, name="Lamp", price=Decimal("12.50")))
        assert item.id is not None
        fetched = repo.get(item.id)
        assert fetched is not None and fetched.name == "Lamp" and fetched.price == Decimal("12.50")
        assert fetched.created_at.tzinfo is not None
        with db.transaction():
            repo.update(fetched, {"name": "Desk lamp", "status": "archived"})
        assert repo.get(item.id).name == "Desk lamp"  # type: ignore[union-attr]
        with db.transaction():
            repo.delete(fetched)
        assert repo.get(item.id) is None


def test_update_refuses_unknown_fields(any_app: Flask) -> None:
    with any_app.app_context():
        owner = _owner()
        with pytest.raises(QueryError, match="password"):
            UserRepository(db.session).update(owner, {"password": "x"})


def test_unit_of_work_rolls_back_everything_on_error(any_app: Flask) -> None:
    with any_app.app_context():
        with pytest.raises(RuntimeError), db.transaction():
            owner = _owner()
            _items(owner, [("A", "1"), ("B", "2")])
            raise RuntimeError("boom")
        assert db.session.scalar(select(func.count()).select_from(Item)) == 0
        assert UserRepository(db.session).by_email("owner@example.com") is None


def test_repository_never_commits(any_app: Flask) -> None:
    with any_app.app_context():
        _owner()
        db.session.rollback()  # nothing was committed by the repository
        assert UserRepository(db.session).count_all() == 0


def test_sort_by_allowlisted_column_with_id_tie_breaker(any_app: Flask) -> None:
    with any_app.app_context():
        owner = _owner()
        made = _items(owner, [("b", "5"), ("a", "5"), ("c", "1"), ("d", "5")])
        repo = ItemRepository(db.session)
        asc = repo.list(ListQuery(sort="price", direction="asc"))
        assert [i.name for i in asc.items] == ["c", "b", "a", "d"]  # equal prices keep id order
        desc = repo.list(ListQuery(sort="price", direction="desc"))
        assert [i.name for i in desc.items] == ["d", "a", "b", "c"]
        by_name = repo.list(ListQuery(sort="name"))
        assert [i.name for i in by_name.items] == ["a", "b", "c", "d"]
        assert {i.id for i in made} == {i.id for i in by_name.items}


@pytest.mark.parametrize(
    "sort", ["password_hash", "name;DROP TABLE item", "CASE WHEN 1=1 THEN name END", "owner_id"]
)
def test_sort_outside_the_allowlist_is_refused(any_app: Flask, sort: str) -> None:
    with any_app.app_context(), pytest.raises(UnknownSortError):
        ItemRepository(db.session).list(ListQuery(sort=sort))


def test_bad_direction_is_refused(any_app: Flask) -> None:
    with any_app.app_context(), pytest.raises(QueryError):
        ItemRepository(db.session).list(ListQuery(sort="name", direction="sideways"))  # type: ignore[arg-type]


def test_pagination_edges(any_app: Flask) -> None:
    with any_app.app_context():
        owner = _owner()
        _items(owner, [(f"item {n:02}", str(n)) for n in range(1, 24)])
        repo = ItemRepository(db.session)
        first = repo.list(ListQuery(sort="name", page=1, per_page=10))
        assert (first.total, first.pages, len(first.items)) == (23, 3, 10)
        assert first.items[0].name == "item 01" and not first.has_prev and first.has_next
        last = repo.list(ListQuery(sort="name", page=3, per_page=10))
        assert [i.name for i in last.items] == ["item 21", "item 22", "item 23"]
        assert (last.first_index, last.last_index) == (21, 23)
        for page in (0, -5):
            clamped = repo.list(ListQuery(sort="name", page=page, per_page=10))
            assert clamped.page == 1 and clamped.items[0].name == "item 01"
        beyond = repo.list(ListQuery(sort="name", page=99, per_page=10))
        assert beyond.items == [] and beyond.total == 23 and beyond.first_index == 0
        huge = repo.list(ListQuery(sort="name", per_page=10**9))
        assert huge.per_page == MAX_PER_PAGE and len(huge.items) == 23
        tiny = repo.list(ListQuery(sort="name", per_page=0))
        assert tiny.per_page == 1 and len(tiny.items) == 1


def test_search_and_filters(any_app: Flask) -> None:
    with any_app.app_context():
        owner = _owner()
        _items(
            owner, [("Red chair", "1"), ("Blue chair", "2"), ("Red table", "3"), ("100% wool", "4")]
        )
        repo = ItemRepository(db.session)
        found = repo.list(ListQuery(sort="name", q="red"))
        assert [i.name for i in found.items] == ["Red chair", "Red table"]
        assert [i.name for i in repo.list(ListQuery(q="100%")).items] == ["100% wool"]
        assert repo.list(ListQuery(q="%")).total == 1  # wildcards match themselves
        assert repo.list(ListQuery(filters={"status": "draft"})).total == 0
        with pytest.raises(QueryError):
            repo.list(ListQuery(filters={"password_hash": "x"}))


def test_search_ignores_case_and_follows_renames(any_app: Flask) -> None:
    """Searches match the stored lower-cased name: any case, kept current by the database."""
    with any_app.app_context():
        owner = _owner()
        lamp, _ = _items(owner, [("Brass LAMP", "1"), ("Oak desk", "2")])
        repo = ItemRepository(db.session)
        assert [i.name for i in repo.list(ListQuery(q="lAmP")).items] == ["Brass LAMP"]
        with db.transaction():
            repo.update(lamp, {"name": "Brass Lantern"})
        assert repo.list(ListQuery(q="lamp")).total == 0
        assert [
            r.name for r in repo.list_rows(repo.table_columns(), ListQuery(q="LANTERN")).items
        ] == ["Brass Lantern"]


@pytest.mark.parametrize("q", ["lamp", ""])
@pytest.mark.parametrize(
    ("sort", "direction"), [("price", "desc"), ("name", "asc"), ("id", "desc")]
)
def test_pages_by_offset_and_by_keyset_hold_the_same_rows(
    any_app: Flask, sort: str, direction: str, q: str
) -> None:
    """Searched pages and pages past the first pick their ids apart from their rows (a
    deferred join): OFFSET pages, and after, before, skipping and last seeks, still give
    every matching row once, in sort order with id breaking ties."""
    with any_app.app_context():
        owner = _owner()
        prices = ["5", "1", "5", "3", "5", "2", "4", "5", "1", "2", "9"]
        lamps = _items(owner, [(f"Lamp {i:02d}", p) for i, p in enumerate(prices)])
        others = _items(owner, [("chair", "1"), ("stool", "5")])
        repo = ItemRepository(db.session)
        columns = repo.table_columns()

        def query(number: int) -> ListQuery:
            return ListQuery(sort=sort, direction=direction, q=q, per_page=4, page=number)

        def page(number: int, seek: Seek | None = None) -> list[int]:
            return [row.id for row in repo.list_rows(columns, query(number), seek=seek).items]

        matching = lamps + (others if not q else [])
        ordered = sorted(matching, key=lambda i: (getattr(i, sort), i.id))
        if direction == "desc":
            ordered.reverse()
        expected = [item.id for item in ordered]
        pages = [page(n) for n in (1, 2, 3, 4)]
        assert [i for p in pages for i in p] == expected
        first = repo.list_rows(columns, query(1)).items
        second = repo.list_rows(columns, query(2)).items
        assert page(2, Seek("after", sort_key(first[-1], sort))) == pages[1]
        assert page(3, Seek("after", sort_key(first[-1], sort), skip=4)) == pages[2]
        assert page(1, Seek("before", sort_key(second[0], sort))) == pages[0]
        last = 3 if q else 4
        assert page(last, Seek("last")) == pages[last - 1]


def test_page_window_marks_gaps() -> None:
    from app.core.listing import Page

    page: Page[Item] = Page(items=[], page=10, per_page=10, total=500)
    assert page.window(2) == [1, None, 8, 9, 10, 11, 12, None, 50]
    assert Page(items=[], page=1, per_page=10, total=0).window() == [1]


def test_emails_are_unique_case_insensitively(any_app: Flask) -> None:
    with any_app.app_context():
        repo = UserRepository(db.session)
        repo.add(User(email="a@example.com", role="user"))
        assert repo.email_taken("A@Example.com")
        assert repo.by_email(" A@EXAMPLE.COM ") is not None


@pytest.mark.parametrize(("sort", "direction"), [("price", "desc"), ("name", "asc"), ("id", "asc")])
def test_iterate_walks_every_match_in_order_across_batches(
    any_app: Flask, sort: str, direction: str
) -> None:
    """Keyset batches (of 3 here) meet exactly: no row twice, none lost, ties broken by id."""
    with any_app.app_context():
        owner = _owner()
        prices = ["5", "1", "5", "3", "5", "2", "4", "5", "1", "2", "9"]
        made = _items(owner, [(f"lamp {i:02d}", p) for i, p in enumerate(prices)])
        _items(owner, [("chair", "7")])  # filtered out by the search below
        query = ListQuery(sort=sort, direction=direction, q="lamp")
        repo = ItemRepository(db.session)
        walked = [item.id for item in repo.iterate(query, batch=3)]
        expected = [
            item.id
            for item in repo.list(
                ListQuery(sort=sort, direction=direction, q="lamp", per_page=100)
            ).items
        ]
        assert walked == expected and len(walked) == len(made)
        rows = list(repo.iterate(query, batch=4, columns=repo.export_columns()))
        assert [r.id for r in rows] == expected and rows[0].description == ""
