"""Import users from a CSV: validate, skip who exists, insert 100 at a time.

Rows stream through the data pipeline, so memory stays flat however long the
file is; only the emails already seen are kept, to catch duplicates inside the
file. Each batch commits in its own transaction with its USER_CREATED events
(and so its audit rows): a failure rolls back that batch only, and the report
says which batches committed. Imported users have no password; they set one
through the reset flow.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from app.core.events import SYSTEM, Actor
from app.core.sql import transaction
from app.models.user import ROLES, User
from app.repositories.users import UserRepository
from app.services.csv_source import CsvFile, CsvRow, open_csv
from app.services.data_pipeline import (
    BatchStage,
    FilterStage,
    MapStage,
    Pipeline,
    PipelineError,
    PipelineStage,
    Problems,
    Progress,
    Reject,
    RunContext,
    Tracked,
    ValidateStage,
)
from app.services.users import announce_created, normalize_email

COLUMNS = ("email", "name", "role", "active")
REQUIRED = ("email",)
BATCH_SIZE = 100
MAX_EMAIL = 254
MAX_NAME = 120
ALREADY_REGISTERED = "already registered"
ACTIVE_WORDS = {
    "": True,
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}
REJECT_COLUMNS = ("row", "email", "field", "reason")

ProgressCallback = Callable[[Progress], object]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A parsed row: the user it would become, and what is wrong with it (if anything)."""

    row: CsvRow
    email: str
    name: str
    role: str
    is_active: bool
    problems: tuple[tuple[str, str], ...] = ()

    def to_user(self) -> User:
        """Build the account, without a password: the reset flow sets one."""
        return User(email=self.email, name=self.name, role=self.role, is_active=self.is_active)


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One problem with one row, as written to the rejects file."""

    row: int
    email: str
    field: str
    reason: str
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch written (or, in a dry run, that would be): its number, row span and size."""

    number: int
    first_row: int
    last_row: int
    created: int


@dataclass(slots=True)
class ImportReport:
    """What an import did: counts, the batches committed, and why it stopped if it did."""

    dry_run: bool
    rows_read: int = 0
    created: int = 0
    rejected: int = 0
    already_registered: int = 0
    blank: int = 0
    batches: list[BatchResult] = field(default_factory=list)
    failed_batch: BatchResult | None = None
    error: str | None = None

    def summary(self) -> str:
        """Say in a sentence or two what happened, for the command line and the admin page."""
        counts = (
            f"{self.rejected:,} rejected, {self.already_registered:,} already registered, "
            f"{self.blank:,} blank; {_count(self.rows_read, 'row')} read."
        )
        users = _count(self.created, "user")
        if self.error is not None:
            what, done = ("Dry run", "Nothing was written.") if self.dry_run else ("Import", "")
            return f"{what} stopped: {self.error} {done or self._committed()} {counts}"
        if self.dry_run:
            return f"Dry run: would import {users}; {counts} Nothing was written."
        return f"Imported {users} in {_count(len(self.batches), 'batch')}; {counts}"

    def _committed(self) -> str:
        """Name the batches that committed before a failure, and what was left undone."""
        resume = f"rows from {self.failed_batch.first_row} on" if self.failed_batch else "the rest"
        if not self.batches:
            return f"No batch was committed; {resume} were not imported."
        first, last = self.batches[0], self.batches[-1]
        return (
            f"Batches {first.number}-{last.number} (rows {first.first_row}-{last.last_row}, "
            f"{_count(self.created, 'user')}) were committed and stay; {resume} were not imported."
        )


def _count(n: int, noun: str) -> str:
    """'1 user', '2 users', '3 batches'."""
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{n:,} {noun if n == 1 else plural}"


class ImportFailed(Exception):
    """The import stopped part-way; ``report`` says which batches committed before it did."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.summary())
        self.report = report


def open_user_csv(path: Path) -> CsvFile:
    """Check a user CSV whole before anything is imported; raises CsvFileError."""
    return open_csv(path, required=REQUIRED, allowed=COLUMNS)


def import_users(
    session: Session,
    rows: Iterable[CsvRow],
    *,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    on_reject: Callable[[RejectedRow], object] | None = None,
    actor: Actor = SYSTEM,
    batch_size: int = BATCH_SIZE,
    welcome: bool = False,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import ``rows``, committing each batch on its own; raises ImportFailed if one fails.

    With ``welcome`` each new account is owed a welcome email. ``report`` is the one
    to fill, for a caller that reads the counts while the import runs (the web import).
    """
    report = report if report is not None else ImportReport(dry_run=dry_run)
    pipeline = build_pipeline(session, report, batch_size=batch_size)
    write = _batch_writer(session, report, actor=actor, dry_run=dry_run, welcome=welcome)
    rejects = _reject_counter(report, on_reject)
    try:
        pipeline.run(rows, sink=write, on_progress=on_progress, on_reject=rejects)
    except PipelineError as exc:
        session.rollback()
        report.error = _describe(exc, report.failed_batch)
        raise ImportFailed(report) from exc
    if dry_run:
        session.rollback()
    return report


def build_pipeline(
    session: Session, report: ImportReport, *, batch_size: int = BATCH_SIZE
) -> Pipeline[CsvRow, list[Candidate]]:
    """Assemble the stages; a fresh pipeline per import, as the duplicate check has state."""
    return Pipeline[CsvRow, list[Candidate]](
        "user_import",
        [
            FilterStage(_blank_counter(report), name="skip blank rows"),
            MapStage(parse_row),  # parse once: email normalisation is the costly part
            ValidateStage(_validator(), name="validate"),
            BatchStage(batch_size),
            SkipRegistered(session),
        ],
    )


def parse_row(row: CsvRow) -> Candidate:
    """Read and normalise one row's cells, collecting every problem rather than the first."""
    problems: list[tuple[str, str]] = []
    values = row.values
    email = _email(values.get("email", ""), problems)
    name = values.get("name", "").strip()
    if len(name) > MAX_NAME:
        problems.append(("name", f"is longer than {MAX_NAME} characters"))
    role = values.get("role", "").strip().lower() or "user"
    if role not in ROLES:
        problems.append(("role", f"must be one of {', '.join(ROLES)}, not {role!r}"))
    active = ACTIVE_WORDS.get(values.get("active", "").strip().lower())
    if active is None:
        problems.append(("active", "must be true/false, yes/no or 1/0 (blank means true)"))
    if row.extra:
        problems.append(("", f"has {len(row.extra)} more cell(s) than the header has columns"))
    return Candidate(row, email, name, role, active is not False, tuple(problems))


def _email(raw: str, problems: list[tuple[str, str]]) -> str:
    """Return the normalised address, or the raw one after noting why it is unusable."""
    if not raw.strip():
        problems.append(("email", "is required"))
        return ""
    try:
        email = normalize_email(raw)
    except ValueError as exc:
        problems.append(("email", str(exc)))
        return raw.strip()
    if len(email) > MAX_EMAIL:
        problems.append(("email", f"is longer than {MAX_EMAIL} characters"))
    return email


def _validator() -> Callable[[Candidate], Problems]:
    """Pass good rows; a later row repeating an earlier good row's email is a duplicate."""
    seen: dict[str, int] = {}

    def validate(candidate: Candidate) -> Problems:
        if candidate.problems:
            return candidate.problems
        first = seen.setdefault(candidate.email, candidate.row.number)
        if first != candidate.row.number:
            return [("email", f"duplicate of row {first}")]
        return None

    return validate


class SkipRegistered(PipelineStage[list[Candidate], list[Candidate]]):
    """Reject candidates whose email already has an account: one IN query per batch."""

    def __init__(self, session: Session) -> None:
        super().__init__(name="skip registered")
        self.users = UserRepository(session)

    def process(
        self, items: Iterator[Tracked[list[Candidate]]], ctx: RunContext
    ) -> Iterator[Tracked[list[Candidate]]]:
        """Yield each batch without the registered emails; empty batches are dropped."""
        for batch in items:
            taken = self.users.existing_emails([c.email for c in batch.value])
            fresh = [c for c in batch.value if c.email not in taken]
            for candidate in batch.value:
                if candidate.email in taken:
                    problem = [("email", ALREADY_REGISTERED)]
                    ctx.reject(self.name, Tracked(batch.position, candidate), problem)
            if fresh:
                yield Tracked(batch.position, fresh)


def _batch_writer(
    session: Session, report: ImportReport, *, actor: Actor, dry_run: bool, welcome: bool = False
) -> Callable[[list[Candidate]], None]:
    """Return the sink: one transaction per batch, the users and their events together."""

    def write(batch: list[Candidate]) -> None:
        done = BatchResult(len(report.batches) + 1, batch[0].row.number, batch[-1].row.number, 0)
        report.failed_batch = done
        if not dry_run:
            with transaction(session):
                users = UserRepository(session).add_all([c.to_user() for c in batch])
                for user in users:
                    announce_imported(session, user, actor, welcome=welcome)
        report.failed_batch = None
        report.batches.append(
            BatchResult(done.number, done.first_row, done.last_row, created=len(batch))
        )
        report.created += len(batch)

    return write


def announce_imported(session: Session, user: User, actor: Actor, *, welcome: bool = False) -> None:
    """Publish USER_CREATED for an imported account (the audit handler records it; with
    ``welcome`` the outbox owes the account a welcome email)."""
    extra = {"welcome": True} if welcome else {}
    announce_created(session, user, actor, source="import", **extra)


def _blank_counter(report: ImportReport) -> Callable[[CsvRow], bool]:
    """Keep rows with content; count every row, and the all-empty ones spreadsheets export."""

    def has_content(row: CsvRow) -> bool:
        report.rows_read += 1
        if row.is_blank():
            report.blank += 1
            return False
        return True

    return has_content


def _reject_counter(
    report: ImportReport, forward: Callable[[RejectedRow], object] | None
) -> Callable[[Reject], None]:
    """Count rejected rows (not problems: one row may have several) and pass them on."""
    last_row = 0

    def on_reject(reject: Reject) -> None:
        nonlocal last_row
        candidate: Candidate = reject.item
        number = candidate.row.number
        if reject.reason == ALREADY_REGISTERED:
            report.already_registered += 1
        elif number != last_row:
            report.rejected += 1
        last_row = number
        if forward is not None:
            forward(
                RejectedRow(
                    number, candidate.email, reject.field, reject.reason, candidate.row.values
                )
            )

    return on_reject


def _describe(exc: PipelineError, batch: BatchResult | None) -> str:
    """Say where the import failed and why, in one line (driver errors can be pages long)."""
    cause = exc.__cause__ or exc
    detail = str(getattr(cause, "orig", None) or cause).strip().splitlines()
    message = f"{type(cause).__name__}: {detail[0][:300] if detail else ''}"
    if batch is None:
        return f"reading or checking rows failed ({message})."
    return f"batch {batch.number} (rows {batch.first_row}-{batch.last_row}) failed ({message})."


@contextmanager
def open_rejects(path: Path, columns: Iterable[str]) -> Iterator[Callable[[RejectedRow], None]]:
    """Write rejected rows as CSV: row, email, field, reason, then the file's other columns."""
    others = [c for c in columns if c != "email"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*REJECT_COLUMNS, *others])

        def write(rejected: RejectedRow) -> None:
            raw_email = rejected.values.get("email", rejected.email)
            head = [rejected.row, raw_email, rejected.field, rejected.reason]
            writer.writerow(head + [rejected.values.get(c, "") for c in others])

        yield write
