"""What each kind of message runs: one table for the RQ workers and the embedded runner."""

from __future__ import annotations

import time
from collections.abc import Callable

from app.core.metrics import JOB_FAILURES, JOB_SECONDS
from app.jobs.emails import deliver_email
from app.jobs.imports import run_user_import
from app.jobs.payments import reconcile_payment
from app.jobs.webhooks import deliver_webhook
from app.services.outbox import Message

Task = Callable[..., None]  # task(message, *, retry_in=seconds or None on the last attempt)

TASKS: dict[str, Task] = {
    "email": deliver_email,
    "webhook.deliver": deliver_webhook,
    "job.user_import": run_user_import,
    "job.payment_reconcile": reconcile_payment,
}


def task_for(kind: str) -> Task | None:
    """The task of a kind ("email.welcome"): an exact entry, else its prefix's."""
    return TASKS.get(kind) or TASKS.get(kind.split(".", 1)[0])


def run(message: Message, *, retry_in: float | None) -> None:
    """Run a message's task (inside an app context), timed and counted by queue."""
    task = task_for(message.kind)
    if task is None:
        raise LookupError(f"no task for {message.kind!r}")
    started = time.perf_counter()
    try:
        task(message, retry_in=retry_in)
    except Exception:
        JOB_FAILURES.labels(queue=message.queue).inc()
        raise
    finally:
        JOB_SECONDS.labels(queue=message.queue).observe(time.perf_counter() - started)
