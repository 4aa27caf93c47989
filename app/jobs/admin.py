"""The jobs page's view of RQ: queue counts, running and failed jobs, requeue and delete.

Registered as the app's QueueAdmin (app/core/queue_admin.py) when a broker carries
the messages. Only jobs of this app's queues are touched, and only failed ones
are requeued or deleted; a requeued job keeps its id and arguments, and tasks are
idempotent, so a job that did half its work before failing does the rest once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Flask
from rq import Queue
from rq.job import Job
from rq.registry import BaseRegistry

from app.core.queue_admin import JobSummary, QueueCounts
from app.jobs.queues import QUEUE_NAMES
from app.jobs.worker import queues

ERROR_LINES = 12
ERROR_CHARS = 2000
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # RQ's own rule for ids


class RqQueueAdmin:
    """QueueAdmin over this app's RQ queues (names under QUEUE_PREFIX)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._queues: list[tuple[str, Queue]] | None = None

    @property
    def queues(self) -> list[tuple[str, Queue]]:
        if self._queues is None:  # built on first use: Redis is not touched at start-up
            self._queues = list(zip(QUEUE_NAMES, queues(self.app), strict=True))
        return self._queues

    def counts(self) -> list[QueueCounts]:
        return [
            QueueCounts(
                name,
                queued=queue.count,
                started=queue.started_job_registry.count,
                scheduled=queue.scheduled_job_registry.count,
                failed=queue.failed_job_registry.count,
            )
            for name, queue in self.queues
        ]

    def running(self, limit: int) -> list[JobSummary]:
        return self._jobs(((n, q.started_job_registry) for n, q in self.queues), limit)

    def failed(self, limit: int) -> list[JobSummary]:
        return self._jobs(((n, q.failed_job_registry) for n, q in self.queues), limit)

    def requeue(self, job_id: str) -> bool:
        registry = self._failed_holding(job_id)
        if registry is None:
            return False
        registry.requeue(job_id)
        return True

    def delete(self, job_id: str) -> bool:
        registry = self._failed_holding(job_id)
        if registry is None:
            return False
        registry.remove(job_id, delete_job=True)
        return True

    def _failed_holding(self, job_id: str) -> BaseRegistry | None:
        if not _JOB_ID.match(job_id):
            return None
        for _name, queue in self.queues:
            registry: BaseRegistry = queue.failed_job_registry
            if job_id in registry:
                return registry
        return None

    def _jobs(self, registries: Iterable[tuple[str, BaseRegistry]], limit: int) -> list[JobSummary]:
        found: list[JobSummary] = []
        for name, registry in registries:
            ids = registry.get_job_ids(0, limit - 1, desc=True, cleanup=False)
            for job in Job.fetch_many(ids, connection=registry.connection):
                if job is not None:
                    found.append(_summary(name, job))
        found.sort(key=lambda j: (j.ended_at or j.started_at or j.enqueued_at or 0,), reverse=True)
        return found[:limit]


def _summary(queue: str, job: Job) -> JobSummary:
    args = job.args or ()
    message_id = args[0] if args and isinstance(args[0], int) else None
    kind = str(args[1]) if len(args) > 1 else str(job.func_name)
    return JobSummary(
        id=job.id,
        queue=queue,
        kind=kind,
        message_id=message_id,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        error=_trimmed(_error_text(job)),
    )


def _error_text(job: Job) -> str:
    result = job.latest_result()
    if result is not None and result.exc_string:
        return str(result.exc_string)
    return str(job.exc_info or "")


def _trimmed(text: str) -> str:
    """The end of a traceback: where it failed and why, not the whole stack."""
    lines = text.strip().splitlines()[-ERROR_LINES:]
    return "\n".join(lines)[-ERROR_CHARS:]
