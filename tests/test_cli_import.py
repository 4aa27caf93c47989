"""`flask users import FILE.csv`: end to end on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models.audit import AuditLog
from app.models.user import User
from app.repositories.users import UserRepository

MIXED = """\
email,name,role,active
ann@example.com,Ann,admin,yes
Bo@Example.com,Bo,,
not-an-email,Nope,user,true
cy@example.com,Cy,root,maybe
,,,
ANN@example.com,Ann again,user,1

dee@example.com,"Dee ""the"" Dev",guest,0
"""


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["users", "import", *args])


def counts(app: Flask) -> tuple[int, int]:
    """(users, USER_CREATED audit rows)."""
    with app.app_context():
        users = UserRepository(db.session).count_all()
        stmt = select(func.count()).where(AuditLog.event_type == "user.created")
        return users, int(db.session.scalar(stmt) or 0)


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_imports_good_rows_rejects_bad_ones_and_a_rerun_adds_nothing(
    any_app: Flask, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(MIXED, encoding="utf-8")
    first = invoke(any_app, str(source))
    assert first.exit_code == 0, first.output
    assert "Imported 3 users in 1 batch; 3 rejected, 0 already registered, 1 blank" in first.output
    assert counts(any_app) == (3, 3)
    rejects = read_rejects(tmp_path / "people.rejects.csv")
    assert [(r["row"], r["field"]) for r in rejects] == [
        ("4", "email"),
        ("5", "role"),
        ("5", "active"),
        ("7", "email"),
    ]
    assert "@-sign" in rejects[0]["reason"]
    assert rejects[3]["reason"] == "duplicate of row 2"
    assert rejects[3]["email"] == "ANN@example.com" and rejects[3]["name"] == "Ann again"

    second = invoke(any_app, str(source))
    assert second.exit_code == 0, second.output
    assert "Imported 0 users in 0 batches; 3 rejected, 3 already registered" in second.output
    assert counts(any_app) == (3, 3)
    again = read_rejects(tmp_path / "people.rejects.csv")
    registered = sorted(r["row"] for r in again if r["reason"] == "already registered")
    assert registered == ["2", "3", "9"]


def test_imported_users_have_no_password_and_keep_role_and_state(
    any_app: Flask, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(MIXED, encoding="utf-8")
    assert invoke(any_app, str(source)).exit_code == 0
    with any_app.app_context():
        users = {u.email: u for u in db.session.scalars(select(User))}
    assert set(users) == {"ann@example.com", "bo@example.com", "dee@example.com"}
    assert users["ann@example.com"].role == "admin"
    assert users["bo@example.com"].role == "user" and users["bo@example.com"].is_active
    assert (
        users["dee@example.com"].name == 'Dee "the" Dev' and not users["dee@example.com"].is_active
    )
    assert all(u.password_hash is None for u in users.values())


def test_dry_run_changes_nothing_but_writes_the_rejects_file(
    any_app: Flask, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(MIXED, encoding="utf-8")
    rejects = tmp_path / "out" / "bad-rows.csv"
    rejects.parent.mkdir()
    result = invoke(any_app, str(source), "--dry-run", "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert "Dry run: would import 3 users" in result.output
    assert counts(any_app) == (0, 0)
    assert len(read_rejects(rejects)) == 4


def _latin1(path: Path) -> None:
    path.write_bytes(b"email,name\nj\xe9r\xf4me@example.com,J\xe9r\xf4me\n")


def _no_header(path: Path) -> None:
    path.write_text("ann@example.com,Ann,user,true\n", encoding="utf-8")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _huge_line(path: Path) -> None:
    path.write_bytes(b"email,name\nann@example.com,Ann\n" + b"x" * 10_000_000 + b"\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_latin1, "Line 2 is not UTF-8 text (byte 0xe9"),
        (_no_header, "Line 1 must be the header"),
        (_empty, "The file is empty"),
        (_huge_line, "Line 3 is longer than 65,536 bytes"),
    ],
    ids=["wrong-encoding", "missing-header", "empty", "10-mb-line"],
)
def test_unusable_files_exit_non_zero_and_change_nothing(
    any_app: Flask, tmp_path: Path, make: Callable[[Path], None], message: str
) -> None:
    source = tmp_path / "people.csv"
    make(source)
    result = invoke(any_app, str(source))
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output
    assert counts(any_app) == (0, 0)
    assert not (tmp_path / "people.rejects.csv").exists()


def test_a_failed_batch_exits_non_zero_and_says_which_batches_committed(
    any_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "many.csv"
    lines = [f"user{i}@example.com,User {i}" for i in range(250)]
    source.write_text("email,name\n" + "\n".join(lines) + "\n", encoding="utf-8")
    real_add_all = UserRepository.add_all

    def fail_on_third_batch(self: UserRepository, users: list[User]) -> list[User]:
        added = real_add_all(self, users)
        if users[0].email == "user200@example.com":
            raise RuntimeError("connection lost")
        return added

    monkeypatch.setattr(UserRepository, "add_all", fail_on_third_batch)
    result = invoke(any_app, str(source))
    assert result.exit_code == 1
    assert "batch 3 (rows 202-251) failed (RuntimeError: connection lost)" in result.output
    assert "Batches 1-2 (rows 2-201, 200 users) were committed and stay" in result.output
    assert counts(any_app) == (200, 200)


def test_the_rejects_file_may_not_overwrite_the_input(any_app: Flask, tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text(MIXED, encoding="utf-8")
    result = invoke(any_app, str(source), "--rejects", str(source))
    assert result.exit_code == 1
    assert "must not be the file being imported" in result.output
    assert source.read_text(encoding="utf-8") == MIXED
