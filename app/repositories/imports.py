"""Data access for web user imports (ImportRun)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.models.imports import ImportRun


class ImportRunRepository:
    """Import runs: the newest first, and the one claim that lets a single job run each."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, run_id: int) -> ImportRun | None:
        return self.session.get(ImportRun, run_id)

    def add(self, run: ImportRun) -> ImportRun:
        self.session.add(run)
        self.session.flush()
        return run

    def recent(self, limit: int) -> list[ImportRun]:
        stmt = select(ImportRun).order_by(ImportRun.created_at.desc(), ImportRun.id.desc())
        return list(self.session.scalars(stmt.limit(limit)))

    def claim(self, run_id: int, *, now: datetime, stale_before: datetime) -> bool:
        """Move a queued run (or a running one whose job went silent) to running; one
        UPDATE, so of two jobs racing for a run only one gets it."""
        stmt = (
            update(ImportRun)
            .where(
                ImportRun.id == run_id,
                or_(
                    ImportRun.state == "queued",
                    (ImportRun.state == "running") & (ImportRun.updated_at < stale_before),
                ),
            )
            .values(
                state="running",
                started_at=now,
                updated_at=now,
                error=None,
                rows_read=0,  # a taken-over run reads the file again from the start
                imported=0,
                rejected=0,
                already_registered=0,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]
