"""User imports started from the web: an upload checked at once, imported later by a job.

`start_import` runs in the request: the file is saved under a random name, checked
whole by the same CSV reader `flask users import` uses (UTF-8, a known header, at
most MAX_UPLOAD_BYTES), and only a usable file gets an ImportRun and its outbox
message (`job.user_import`), in the caller's transaction. Anything else is a
ValidationFailed (422) that leaves nothing behind.

`execute_import` is the job: it claims the run (queued -> running, in one UPDATE,
so a redelivered message finds it taken or finished and does nothing), streams the
rows through the user-import pipeline, commits the counters at most every
PROGRESS_SECONDS so the page can show them, writes the rejects CSV beside the
upload and records done or failed. A run whose job went silent for STALE_SECONDS
(its process died) is taken over by the next delivery and read again from the
start: the accounts the dead run had committed then count as already registered.
"""

from __future__ import annotations

import csv
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session

from app.core.events import Actor
from app.core.sql import transaction
from app.errors import NotFound, ValidationFailed
from app.models.base import MAX_ID, utcnow
from app.models.imports import ImportRun
from app.repositories.imports import ImportRunRepository
from app.services.csv_source import CsvFileError
from app.services.data_pipeline import Progress
from app.services.outbox import add_message
from app.services.user_import import (
    ImportFailed,
    ImportReport,
    import_users,
    open_rejects,
    open_user_csv,
)
from app.utils.text import has_control_chars

JOB_KIND = "job.user_import"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PROGRESS_SECONDS = 0.5  # the page polls every second; counters are never older than this
STALE_SECONDS = 60  # a running import that has not moved for this long lost its job
RECENT_RUNS = 20
REJECTS_SHOWN = 200
_CHUNK = 64 * 1024
_STORED_NAME = re.compile(r"^[0-9a-f]{32}\.csv$")
FINISHED = frozenset({"done", "failed"})


class ImportBusy(RuntimeError):
    """Another job is running this import now; the message should come back later."""


@dataclass(frozen=True, slots=True)
class RejectLine:
    """One line of a rejects file, as the result page lists it."""

    row: str
    email: str
    field: str
    reason: str


# --- the request: check the upload, queue the job -----------------------------------


def start_import(
    session: Session,
    *,
    uploads: Path,
    stream: IO[bytes] | None,
    filename: str,
    send_welcome: bool,
    actor: Actor,
) -> ImportRun:
    """Keep a usable CSV under `uploads` and queue its import; ValidationFailed otherwise."""
    if stream is None or not filename:
        raise _bad_file("Choose a CSV file to upload.")
    path = _save(uploads, stream)
    try:
        source = open_user_csv(path)
        if source.data_rows == 0:
            raise CsvFileError("The file has a header but no rows to import.")
        run = ImportRunRepository(session).add(
            ImportRun(
                filename=display_name(filename),
                stored_as=path.name,
                send_welcome=send_welcome,
                rows_total=source.data_rows,
                created_by=actor.user_id,
            )
        )
        add_message(session, JOB_KIND, {"import_run_id": run.id})
    except CsvFileError as exc:
        path.unlink(missing_ok=True)
        raise _bad_file(str(exc)) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return run


def _bad_file(message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={"file": message})


def _save(uploads: Path, stream: IO[bytes]) -> Path:
    """Copy the upload to a random name, refusing it past MAX_UPLOAD_BYTES."""
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"{secrets.token_hex(16)}.csv"
    size = 0
    with path.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                out.close()
                path.unlink(missing_ok=True)
                raise _bad_file(too_big_message())
            out.write(chunk)
    return path


def too_big_message() -> str:
    return (
        f"The file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: split it and upload the parts."
    )


def display_name(filename: str) -> str:
    """The name a browser sent, without folders or control characters, for showing only."""
    name = re.split(r"[\\/]", filename)[-1].strip()
    if has_control_chars(name):
        name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "upload.csv"


# --- the job: run the import, counting as it goes ----------------------------------


def execute_import(
    session: Session, run_id: int, *, uploads: Path, clock: Callable[[], float] = time.monotonic
) -> ImportRun | None:
    """Run a queued import to its end; None when there is nothing to do (a redelivery)."""
    run = _claim(session, run_id)
    if run is None:
        return None
    try:
        source = open_user_csv(uploads / run.stored_as)
    except (CsvFileError, OSError) as exc:
        return _finish(session, run.id, None, error=f"The uploaded file cannot be read: {exc}")
    report = ImportReport(dry_run=False)
    progress = _ProgressWriter(session, run, report, clock)
    try:
        with open_rejects(rejects_path(uploads, run), source.columns) as write_reject:
            import_users(
                session,
                source.rows(),
                on_progress=progress,
                on_reject=write_reject,
                actor=Actor(user_id=run.created_by),
                welcome=run.send_welcome,
                report=report,
            )
    except ImportFailed as exc:
        return _finish(session, run.id, exc.report, error=exc.report.summary())
    return _finish(session, run.id, report)


def _claim(session: Session, run_id: int) -> ImportRun | None:
    """The run to execute now, marked running; None when it is finished or gone."""
    with transaction(session):
        repo = ImportRunRepository(session)
        run = repo.get(run_id)
        if run is None or run.state in FINISHED:
            return None
        now = utcnow()
        if not repo.claim(run_id, now=now, stale_before=now - timedelta(seconds=STALE_SECONDS)):
            raise ImportBusy(f"import {run_id} is running in another job")
    session.refresh(run)
    return run


class _ProgressWriter:
    """The pipeline's progress callback: copies the live report onto the run and commits,
    at most every PROGRESS_SECONDS (between batches, so only the counters are written)."""

    def __init__(
        self, session: Session, run: ImportRun, report: ImportReport, clock: Callable[[], float]
    ) -> None:
        self.session, self.run, self.report, self.clock = session, run, report, clock
        self.last = float("-inf")

    def __call__(self, progress: Progress) -> None:
        now = self.clock()
        if progress.done or now - self.last < PROGRESS_SECONDS:
            return  # the end is recorded by _finish, with the outcome
        self.last = now
        _copy_counts(self.report, self.run, rows_read=progress.items_in)
        self.session.commit()


def _copy_counts(report: ImportReport, run: ImportRun, *, rows_read: int = 0) -> None:
    run.rows_read = max(rows_read, report.rows_read)  # the pipeline counts a row before the report
    run.imported = report.created
    run.rejected = report.rejected
    run.already_registered = report.already_registered


def _finish(
    session: Session, run_id: int, report: ImportReport | None, *, error: str | None = None
) -> ImportRun:
    with transaction(session):
        run = get_run(session, run_id)
        if report is not None:
            _copy_counts(report, run)
        run.state = "failed" if error else "done"
        run.error = error[:500] if error else None
        run.finished_at = utcnow()
    return run


# --- the pages: runs and their rejects ----------------------------------------------


def get_run(session: Session, run_id: int) -> ImportRun:
    """One import; NotFound for ids no row can have."""
    run = ImportRunRepository(session).get(run_id) if 1 <= run_id <= MAX_ID else None
    if run is None:
        raise NotFound("No such import.")
    return run


def recent_runs(session: Session, limit: int = RECENT_RUNS) -> list[ImportRun]:
    """The newest imports first."""
    return ImportRunRepository(session).recent(limit)


def rejects_path(uploads: Path, run: ImportRun) -> Path:
    """The rejects CSV beside the upload (`<name>.rejects.csv`)."""
    if not _STORED_NAME.match(run.stored_as):
        raise NotFound("This import has no file.")
    return uploads / run.stored_as.replace(".csv", ".rejects.csv")


def read_rejects(uploads: Path, run: ImportRun, limit: int = REJECTS_SHOWN) -> list[RejectLine]:
    """The first `limit` lines of a run's rejects file (row, email, field, reason)."""
    path = rejects_path(uploads, run)
    if not path.exists():
        return []
    lines: list[RejectLine] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for cells in reader:
            if len(lines) >= limit:
                break
            row, email, field, reason = [*cells, "", "", "", ""][:4]
            lines.append(RejectLine(row, email, field, reason))
    return lines
