"""User import: reading the CSV safely, row validation, duplicates, dry runs, per-batch commits."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models.audit import AuditLog
from app.models.user import User
from app.repositories.users import UserRepository
from app.services.csv_source import MAX_LINE_BYTES, CsvFileError, CsvRow
from app.services.user_import import (
    ImportFailed,
    ImportReport,
    RejectedRow,
    import_users,
    open_user_csv,
    parse_row,
)
from app.services.users import create_user

# --- helpers ---------------------------------------------------------------------


def row(number: int = 2, /, **values: str) -> CsvRow:
    cells = {"email": "", "name": "", "role": "", "active": ""}
    cells.update(values)
    return CsvRow(number, cells)


def rows_for(emails: list[str], *, first: int = 2) -> list[CsvRow]:
    return [row(first + i, email=e, name=f"User {i}") for i, e in enumerate(emails)]


def many(count: int, *, first: int = 2) -> list[CsvRow]:
    return rows_for([f"user{i}@example.com" for i in range(count)], first=first)


def run_import(
    session: Session, rows: Any, **kwargs: Any
) -> tuple[ImportReport, list[RejectedRow]]:
    rejects: list[RejectedRow] = []
    report = import_users(session, rows, on_reject=rejects.append, **kwargs)
    return report, rejects


def user_count(session: Session) -> int:
    return UserRepository(session).count_all()


def created_events(session: Session) -> int:
    stmt = select(func.count()).where(AuditLog.event_type == "user.created")
    return int(session.scalar(stmt) or 0)


def write(tmp_path: Path, data: bytes | str, name: str = "users.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """The app's session inside an app context, as the CLI and jobs use it."""
    with app.app_context():
        yield db.session


# --- reading the file --------------------------------------------------------------


def test_reads_bom_crlf_and_header_in_any_case(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffEmail , NAME\r\na@example.com,Ann\r\n")
    source = open_user_csv(path)
    assert source.columns == ("email", "name")
    assert source.data_rows == 1
    assert list(source.rows()) == [CsvRow(2, {"email": "a@example.com", "name": "Ann"})]


def test_row_numbers_are_spreadsheet_rows(tmp_path: Path) -> None:
    text = 'email,name\na@example.com,"two\nlines"\n\nb@example.com,Bee\nc@example.com\n'
    rows = list(open_user_csv(write(tmp_path, text)).rows())
    assert [r.number for r in rows] == [2, 4, 5]  # the blank line is row 3
    assert rows[0].values["name"] == "two\nlines"
    assert rows[2].values == {"email": "c@example.com", "name": ""}  # short rows pad


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"\xef\xbb\xbf\n\n", "The file is empty"),
        (b"email,name\nj\xe9r\xf4me@example.com,J\n", "Line 2 is not UTF-8 text (byte 0xe9"),
        (b"\xff\xfee\x00m\x00", "Line 1 is not UTF-8"),
        (b"a@example.com,Ann,user,true\n", "it looks like data: add a header line"),
        (b"emial,name\n", "unknown column(s) 'emial'"),
        (b"name,role\nAnn,user\n", "no 'email' column"),
        (b"email,name,Email\n", "names 'email' more than once"),
        (b'email,name\n"a@example.com,Ann\nb@example.com,Bo\n', "opened on line 2 is never"),
        (b'email\n"a@example.com\n' + b"b@example.com\n" * 5000, "opened on line 2 is never"),
        (b"email\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n", "Line 2 is longer than 65,536"),
    ],
    ids=[
        "empty",
        "bom-only",
        "latin-1",
        "utf-16",
        "no-header",
        "unknown-column",
        "no-email",
        "repeated-column",
        "open-quote",
        "open-quote-long-file",
        "long-line",
    ],
)
def test_unusable_files_are_refused_with_a_reason(
    tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(CsvFileError) as caught:
        open_user_csv(write(tmp_path, data))
    assert message in str(caught.value)


def test_a_bad_byte_near_the_end_is_found_before_any_row_is_used(tmp_path: Path) -> None:
    good = "".join(f"user{i}@example.com,U\n" for i in range(5000))
    path = write(tmp_path, b"email,name\n" + good.encode() + b"z\xe9@example.com,Z\n")
    with pytest.raises(CsvFileError, match="Line 5002 is not UTF-8"):
        open_user_csv(path)


def test_a_10_mb_line_is_refused_without_reading_it_into_memory(tmp_path: Path) -> None:
    path = write(tmp_path, b"email,name\n" + b"a" * 10_000_000 + b"\n")
    tracemalloc.start()
    try:
        with pytest.raises(CsvFileError, match="longer than"):
            open_user_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# --- one row ----------------------------------------------------------------------


def test_parse_row_normalises_and_applies_defaults() -> None:
    parsed = parse_row(row(email="  Ann@Example.COM ", name=" Ann ", role="", active=""))
    assert (parsed.email, parsed.name, parsed.role, parsed.is_active) == (
        "ann@example.com",
        "Ann",
        "user",
        True,
    )
    assert parsed.problems == ()


@pytest.mark.parametrize(
    ("active", "expected"),
    [("true", True), ("YES", True), ("1", True), ("False", False), ("no", False), ("0", False)],
)
def test_active_accepts_the_usual_words(active: str, expected: bool) -> None:
    assert parse_row(row(email="a@example.com", active=active)).is_active is expected


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"email": ""}, "email", "is required"),
        ({"email": "not-an-email"}, "email", "must have an @-sign"),
        ({"email": "a@example.com", "role": "root"}, "role", "must be one of admin, user, guest"),
        ({"email": "a@example.com", "active": "maybe"}, "active", "must be true/false"),
        ({"email": "a@example.com", "name": "n" * 121}, "name", "longer than 120"),
    ],
)
def test_parse_row_explains_each_problem(values: dict[str, str], field: str, reason: str) -> None:
    problems = parse_row(row(2, **values)).problems
    assert [f for f, _ in problems] == [field]
    assert reason in problems[0][1]


def test_every_problem_of_a_row_is_reported() -> None:
    problems = parse_row(CsvRow(2, {"email": "x", "role": "root"}, ("surplus",))).problems
    assert [f for f, _ in problems] == ["email", "role", ""]


# --- importing ----------------------------------------------------------------------


def test_imports_good_rows_and_reports_bad_ones(session: Session) -> None:
    rows = [
        row(2, email="Ann@Example.com", name="Ann", role="admin"),
        row(3, email="bad", name="Bad"),
        row(4, email="ann@example.com", name="Ann again"),
        row(5, email="bo@example.com", active="no"),
        row(6),  # blank: skipped, not rejected
    ]
    report, rejects = run_import(session, rows)
    assert (report.created, report.rejected, report.blank, report.rows_read) == (2, 2, 1, 5)
    assert [(r.row, r.field) for r in rejects] == [(3, "email"), (4, "email")]
    assert rejects[1].reason == "duplicate of row 2"
    ann = UserRepository(session).by_email("ann@example.com")
    assert ann is not None and ann.role == "admin" and ann.password_hash is None
    bo = UserRepository(session).by_email("bo@example.com")
    assert bo is not None and not bo.is_active
    assert created_events(session) == 2


def test_emails_already_registered_are_rejected_so_a_rerun_adds_nothing(session: Session) -> None:
    create_user(session, email="old@example.com", iterations=1000)
    session.commit()
    report, rejects = run_import(session, rows_for(["old@example.com", "new@example.com"]))
    assert (report.created, report.already_registered, report.rejected) == (1, 1, 0)
    assert [(r.row, r.reason) for r in rejects] == [(2, "already registered")]
    again, _ = run_import(session, rows_for(["old@example.com", "new@example.com"]))
    assert (again.created, again.already_registered) == (0, 2)
    assert user_count(session) == 2
    assert created_events(session) == 2


def test_duplicates_are_caught_across_batches(session: Session) -> None:
    emails = ["a@example.com", "b@example.com", "c@example.com", "A@example.com"]
    report, rejects = run_import(session, rows_for(emails), batch_size=2)
    assert report.created == 3
    assert [(r.row, r.reason) for r in rejects] == [(5, "duplicate of row 2")]


def test_a_rejected_row_does_not_make_a_later_good_row_a_duplicate(session: Session) -> None:
    rows = [row(2, email="a@example.com", role="root"), row(3, email="a@example.com")]
    report, rejects = run_import(session, rows)
    assert report.created == 1
    assert [(r.row, r.field) for r in rejects] == [(2, "role")]


def test_batches_of_100_commit_one_by_one(session: Session) -> None:
    report, _ = run_import(session, many(250))
    assert [(b.number, b.first_row, b.last_row, b.created) for b in report.batches] == [
        (1, 2, 101, 100),
        (2, 102, 201, 100),
        (3, 202, 251, 50),
    ]
    assert user_count(session) == created_events(session) == 250


def test_dry_run_writes_nothing_but_reports_everything(session: Session) -> None:
    create_user(session, email="old@example.com", iterations=1000)
    session.commit()
    rows = rows_for(["old@example.com", "new@example.com", "bad"])
    report, rejects = run_import(session, rows, dry_run=True)
    assert (report.created, report.already_registered, report.rejected) == (1, 1, 1)
    assert len(rejects) == 2
    assert report.summary().startswith("Dry run: would import 1 user;")
    assert user_count(session) == 1
    assert created_events(session) == 1  # only the user made above


def test_progress_is_reported_as_rows_are_read(session: Session) -> None:
    seen: list[int] = []
    run_import(session, many(250), on_progress=lambda p: seen.append(p.items_in))
    assert seen == [100, 200, 250]


def test_a_failing_batch_rolls_back_alone_and_the_report_says_what_committed(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_add_all = UserRepository.add_all
    calls = 0

    def add_all_then_fail_third(self: UserRepository, users: list[User]) -> list[User]:
        nonlocal calls
        calls += 1
        added = real_add_all(self, users)  # flushed: the rollback must undo it
        if calls == 3:
            raise RuntimeError("disk on fire")
        return added

    monkeypatch.setattr(UserRepository, "add_all", add_all_then_fail_third)
    with pytest.raises(ImportFailed) as caught:
        run_import(session, many(35), batch_size=10)
    report = caught.value.report
    assert [b.number for b in report.batches] == [1, 2]
    assert report.failed_batch is not None and report.failed_batch.first_row == 22
    assert "batch 3 (rows 22-31) failed (RuntimeError: disk on fire)" in report.summary()
    assert "Batches 1-2 (rows 2-21, 20 users) were committed" in report.summary()
    assert "rows from 22 on were not imported" in report.summary()
    assert user_count(session) == created_events(session) == 20


def test_a_failing_input_keeps_the_batches_already_committed(session: Session) -> None:
    def rows_then_broken_disk() -> Iterator[CsvRow]:
        yield from many(150)
        raise OSError("read error")

    with pytest.raises(ImportFailed) as caught:
        run_import(session, rows_then_broken_disk())
    report = caught.value.report
    assert report.created == 100
    assert "reading or checking rows failed (OSError: read error)" in report.summary()
    assert user_count(session) == 100
