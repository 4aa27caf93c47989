"""What RQ runs: one entry point for every message, inside the worker's app context.

The worker command builds the app once (`flask --app app worker`) and registers it
here before forking; each job runs `dispatch.run` under that app, with the retry
that RQ will make next, so the ledger can say when.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq import get_current_job

from app.jobs.dispatch import run
from app.services.outbox import Message

_app: Flask | None = None


def use_app(app: Flask) -> None:
    """The app tasks run under in this process (set by the worker command and tests)."""
    global _app
    _app = app


def run_message(message_id: int, kind: str, payload: dict[str, Any]) -> None:
    """Run one outbox message (the RQ job whose id is derived from the message id)."""
    if _app is None:
        raise RuntimeError("no app for jobs in this process: start workers with `flask worker`")
    job = get_current_job()
    retry_in = None
    if job is not None and job.retries_left and job.retry_intervals:
        done = len(job.retry_intervals) - job.retries_left
        retry_in = float(job.retry_intervals[min(done, len(job.retry_intervals) - 1)])
    with _app.app_context():
        run(Message(message_id, kind, payload), retry_in=retry_in)
