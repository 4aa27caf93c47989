"""What the jobs page reads of a job queue, and the two things it may do to a job.

A role with the real implementation beside the pages' reach: the RQ one lives in
app/jobs/admin.py and is registered by `init_jobs` when a broker carries the
messages; the pages find it here, so they never import the jobs package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flask import Flask, current_app

EXTENSION_KEY = "queue_admin"


@dataclass(frozen=True)
class QueueCounts:
    """One queue: jobs waiting, running, waiting for a retry, and failed."""

    name: str
    queued: int
    started: int
    scheduled: int
    failed: int


@dataclass(frozen=True)
class JobSummary:
    """A job as the page lists it."""

    id: str
    queue: str
    kind: str  # the outbox message kind it runs, e.g. email.welcome
    message_id: int | None
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    error: str  # the last lines of the exception, for failed jobs


class QueueAdmin(Protocol):
    """Reads queues and jobs; requeues or deletes a failed job. Raises when the store is down."""

    def counts(self) -> list[QueueCounts]: ...

    def running(self, limit: int) -> list[JobSummary]: ...

    def failed(self, limit: int) -> list[JobSummary]: ...

    def requeue(self, job_id: str) -> bool: ...

    def delete(self, job_id: str) -> bool: ...


def register_queue_admin(app: Flask, admin: QueueAdmin) -> None:
    app.extensions[EXTENSION_KEY] = admin


def get_queue_admin(app: Flask | None = None) -> QueueAdmin | None:
    """The app's queue admin, or None in embedded mode (no queues: the outbox runs in-process)."""
    admin: QueueAdmin | None = (app or current_app).extensions.get(EXTENSION_KEY)
    return admin
