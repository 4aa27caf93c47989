"""Background work: the outbox's messages run as tasks, through RabbitMQ and RQ or in-process.

- `relay.py` publishes outbox rows to RabbitMQ (in the `bridge` process);
- `bridge.py` turns RabbitMQ messages into RQ jobs;
- `worker.py` runs RQ workers; `tasks.py` is what they run; `dispatch.py` maps
  a message kind to its task (`emails.py` sends emails);
- `runner.py` runs the same tasks in-process when there is no broker (`make run`);
- `imports.py` runs web user imports; `admin.py` lets the jobs page read RQ;
- `observe.py` puts the backlog and queue depths on /metrics;
- `payments.py` reconciles payments left pending and reports the oldest one's age.
"""

from __future__ import annotations

from flask import Flask

from app.core.queue_admin import register_queue_admin
from app.jobs.admin import RqQueueAdmin
from app.jobs.observe import register_jobs_metrics
from app.jobs.payments import register_payment_metrics
from app.jobs.runner import init_runner
from app.settings import Settings


def init_jobs(app: Flask, settings: Settings) -> None:
    """In-process runner unless a broker carries the messages (then the bridge relays, and
    the jobs page reads RQ); the backlog and queue depths on /metrics."""
    if settings.jobs != "broker":
        init_runner(app, settings.jobs)
    else:
        register_queue_admin(app, RqQueueAdmin(app))
    register_jobs_metrics(app)
    register_payment_metrics(app)
