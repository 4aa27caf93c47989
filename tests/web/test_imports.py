"""The web user import: checked in the request, run as a job, counted, idempotent."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.core.events import SYSTEM
from app.extensions import db
from app.jobs.dispatch import run
from app.models import Delivery, ImportRun, OutboxMessage, User
from app.services import imports
from app.services.data_pipeline import Progress
from app.services.outbox import Message
from app.settings import get_settings
from tests.conftest import login

HX = {"HX-Request": "true", "HX-Request-Type": "partial"}
GOOD = (
    b"email,name,role\n"
    b"ada@example.com,Ada,admin\n"
    b"not-an-email,Bad,user\n"
    b"user@example.com,Already,user\n"
    b"grace@example.com,Grace,\n"
    b"ada@example.com,Ada again,user\n"
)


def _upload(client: FlaskClient, body: bytes, name: str = "people.csv", **form: str):  # type: ignore[no-untyped-def]
    data = {"file": (io.BytesIO(body), name), **form}
    return client.post("/admin/imports", data=data, content_type="multipart/form-data")


def _count(app: Flask, model: type) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _uploads(app: Flask) -> list[str]:
    folder = get_settings(app).uploads_path
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_upload_becomes_a_job_that_imports_and_lists_its_rejects(
    app: Flask, as_admin: FlaskClient
) -> None:
    response = _upload(as_admin, GOOD, send_welcome="1")
    assert response.status_code == 303
    run_url = response.headers["Location"]
    # the test app drains the outbox after each request: the job has run
    with app.app_context():
        found = db.session.scalars(select(ImportRun)).one()
        assert (found.state, found.rows_total, found.rows_read) == ("done", 5, 5)
        assert (found.imported, found.rejected, found.already_registered) == (2, 2, 1)
        assert found.filename == "people.csv" and found.send_welcome
        emails = set(db.session.scalars(select(User.email)))
        assert {"ada@example.com", "grace@example.com"} <= emails
        welcomes = db.session.scalars(select(Delivery.recipient).where(Delivery.kind == "welcome"))
        assert sorted(welcomes) == ["ada@example.com", "grace@example.com"]
    page = as_admin.get(run_url).get_data(as_text=True)
    assert "100%" in page and "Rejected rows" in page
    assert "not-an-email" in page and "duplicate of row 2" in page and "already registered" in page
    assert 'hx-trigger="every 1s"' not in page  # finished: the page stops polling
    csv_file = as_admin.get(run_url + "/rejects.csv")
    assert csv_file.status_code == 200 and csv_file.mimetype == "text/csv"
    assert csv_file.get_data(as_text=True).splitlines()[0] == "row,email,field,reason,name,role"
    listing = as_admin.get("/admin/imports").get_data(as_text=True)
    assert "people.csv" in listing and "badge-done" in listing


def test_without_the_checkbox_nobody_gets_a_welcome(app: Flask, as_admin: FlaskClient) -> None:
    assert _upload(as_admin, GOOD).status_code == 303
    assert _count(app, Delivery) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The file is empty"),
        (b"email,name\n", "no rows to import"),
        (b"ada@example.com,Ada\n", "it looks like data: add"),
        ("email,name\nzoë@example.com,Zoë\n".encode("latin-1"), "is not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is not UTF-8"),
    ],
    ids=["empty", "header only", "no header", "latin-1", "binary"],
)
def test_a_bad_upload_is_422_with_a_reason_and_starts_nothing(
    app: Flask, as_admin: FlaskClient, body: bytes, message: str
) -> None:
    response = _upload(as_admin, body)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html, html[:3000]
    assert 'aria-invalid="true"' in html
    assert _count(app, ImportRun) == 0 and _count(app, OutboxMessage) == 0
    assert _uploads(app) == []


def test_no_file_and_files_over_20_mb_are_422(app: Flask, as_admin: FlaskClient) -> None:
    none = as_admin.post("/admin/imports", data={}, content_type="multipart/form-data")
    assert none.status_code == 422 and "Choose a CSV file" in none.get_data(as_text=True)
    header = b"email\n"
    just_over = header + b"a" * (imports.MAX_UPLOAD_BYTES - len(header) + 1)
    far_over = just_over + b"a" * (1024 * 1024)  # past the request limit itself
    for body in (just_over, far_over):
        response = _upload(as_admin, body)
        assert response.status_code == 422, len(body)
        assert "over 20 MB" in response.get_data(as_text=True)
    assert _count(app, ImportRun) == 0 and _uploads(app) == []


def test_the_form_fragment_comes_back_alone_on_422(as_admin: FlaskClient) -> None:
    response = as_admin.post(
        "/admin/imports",
        data={"file": (io.BytesIO(b""), "e.csv")},
        content_type="multipart/form-data",
        headers={**HX, "HX-Target": "form#import-form"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="import-form"' in html and "<html" not in html
    assert "HX-Request" in response.headers["Vary"]


def test_a_redelivered_message_imports_nothing_twice(app: Flask, as_admin: FlaskClient) -> None:
    assert _upload(as_admin, GOOD).status_code == 303
    users = _count(app, User)
    with app.app_context():
        message = db.session.scalars(select(OutboxMessage)).one()
        before = db.session.scalars(select(ImportRun)).one()
        counts = (before.imported, before.rejected, before.finished_at)
        run(Message(message.id, message.kind, dict(message.payload)), retry_in=None)
    with app.app_context():
        after = db.session.scalars(select(ImportRun)).one()
        assert (after.imported, after.rejected, after.finished_at) == counts
    assert _count(app, User) == users


def _queued_run(app: Flask, body: bytes) -> int:
    with app.app_context(), db.transaction() as session:
        return imports.start_import(
            session,
            uploads=get_settings(app).uploads_path,
            stream=io.BytesIO(body),
            filename="x.csv",
            send_welcome=False,
            actor=SYSTEM,
        ).id


def test_a_running_import_is_left_alone_until_its_job_goes_silent(
    app: Flask, as_admin: FlaskClient
) -> None:
    run_id = _queued_run(app, GOOD)
    with app.app_context(), db.transaction() as session:
        session.get(ImportRun, run_id).state = "running"  # type: ignore[union-attr]
    with app.app_context(), pytest.raises(imports.ImportBusy):
        imports.execute_import(db.session, run_id, uploads=get_settings(app).uploads_path)
    with app.app_context(), db.transaction() as session:  # the job that had it died a while ago
        stale = session.get(ImportRun, run_id)
        assert stale is not None
        stale.imported = 1
        session.flush()
        session.execute(
            update(ImportRun)
            .where(ImportRun.id == run_id)
            .values(updated_at=stale.created_at - timedelta(minutes=5))
        )
    with app.app_context():
        done = imports.execute_import(db.session, run_id, uploads=get_settings(app).uploads_path)
        assert done is not None and (done.state, done.imported) == ("done", 2)


def test_progress_is_committed_while_the_import_runs(app: Flask) -> None:
    rows = b"email\n" + b"".join(f"user{n}@example.com\n".encode() for n in range(450))
    run_id = _queued_run(app, rows)
    seen: list[tuple[int, int, str]] = []
    ticks = iter(range(10_000))
    original = imports._ProgressWriter.__call__

    def watching(self: imports._ProgressWriter, progress: Progress) -> None:
        original(self, progress)
        with app.app_context():  # what another request would read now
            row = db.session.get(ImportRun, run_id)
            assert row is not None
            seen.append((row.rows_read, row.imported, row.state))

    imports._ProgressWriter.__call__ = watching  # type: ignore[method-assign]
    try:
        with app.app_context():
            imports.execute_import(
                db.session,
                run_id,
                uploads=get_settings(app).uploads_path,
                clock=lambda: float(next(ticks)),  # a second passes between reports
            )
    finally:
        imports._ProgressWriter.__call__ = original  # type: ignore[method-assign]
    assert [s[0] for s in seen[:4]] == [100, 200, 300, 400]
    assert all(state == "running" for *_, state in seen)
    assert seen[1][1] == 100  # a committed batch is counted while the next is read
    with app.app_context():
        final = db.session.get(ImportRun, run_id)
        assert final is not None and (final.state, final.imported, final.rows_read) == (
            "done",
            450,
            450,
        )


def test_the_progress_fragment_polls_until_done(app: Flask, as_admin: FlaskClient) -> None:
    run_id = _queued_run(app, GOOD)  # queued, not drained: no request ran it
    response = as_admin.get(
        f"/admin/imports/{run_id}", headers={**HX, "HX-Target": "div#import-progress"}
    )
    html = response.get_data(as_text=True)
    assert 'id="import-progress"' in html and "<html" not in html
    assert 'hx-trigger="every 1s"' in html and 'id="import-announce"' not in html
    assert '<progress class="progress" max="100" value="0"' in html
    assert "HX-Request" in response.headers["Vary"]
    as_admin.post("/logout")  # any request drains the outbox in these tests
    login(as_admin, "admin@example.com")
    done = as_admin.get(
        f"/admin/imports/{run_id}", headers={**HX, "HX-Target": "div#import-progress"}
    ).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' not in done and 'value="100"' in done
    assert 'id="import-announce"' in done and 'hx-swap-oob="innerHTML"' in done
    assert 'id="import-outcome" hx-swap-oob="true"' in done


def test_only_admins_reach_imports(
    app: Flask, client: FlaskClient, accounts: dict[str, int]
) -> None:
    login(client, "user@example.com")
    assert client.get("/admin/imports").status_code == 403
    assert _upload(client, GOOD).status_code == 403
    assert _count(app, ImportRun) == 0


def test_a_file_that_vanished_fails_the_run_with_a_reason(app: Flask, tmp_path: Path) -> None:
    run_id = _queued_run(app, GOOD)
    for path in get_settings(app).uploads_path.iterdir():
        path.unlink()
    with app.app_context():
        found = imports.execute_import(db.session, run_id, uploads=get_settings(app).uploads_path)
        assert found is not None and found.state == "failed"
        assert "cannot be read" in (found.error or "")
