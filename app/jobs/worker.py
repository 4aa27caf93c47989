"""RQ workers on the emails, webhooks and default queues, in the app's context.

Warm shutdown on SIGTERM (RQ finishes the job in hand). A work-horse that dies
mid-job (killed, out of memory) is failed by RQ and retried on its schedule;
the ledger is told either way, so a delivery never looks pending forever.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import redis
from flask import Flask
from rq import Queue, Worker
from rq.job import Job

from app.extensions import db
from app.jobs import tasks
from app.jobs.queues import QUEUE_NAMES, Names
from app.models.base import utcnow
from app.services import deliveries
from app.settings import get_settings

log = logging.getLogger(__name__)


READ_TIMEOUT = 2.0  # seconds; RQ's short commands (enqueue, counts) answer in milliseconds
# How often a worker looks for jobs a dead worker left behind: one killed between taking a
# job and starting it strands the job in RQ's intermediate queue, one killed with its
# work-horse leaves it "started". RQ's default of 10 minutes (twice, for the first) let a
# welcome email wait 20; a minute costs a few Redis reads.
MAINTENANCE_SECONDS = 60


def rq_connection(url: str, *, read_timeout: float | None = READ_TIMEOUT) -> redis.Redis:
    """RQ's own client. A hung Redis raises after `read_timeout` instead of blocking the
    bridge, the jobs page or a metrics scrape forever; a worker passes None, since RQ sets a
    read timeout above its own blocking dequeue wait."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=read_timeout, health_check_interval=30
    )


def queues(app: Flask, *, read_timeout: float | None = READ_TIMEOUT) -> list[Queue]:
    """This app's RQ queues, in the order a worker serves them."""
    settings = get_settings(app)
    if not settings.redis_url:
        raise RuntimeError("RQ workers need REDIS_URL")
    connection = rq_connection(settings.redis_url, read_timeout=read_timeout)
    names = Names(settings.queue_prefix)
    return [Queue(names.queue(q), connection=connection) for q in QUEUE_NAMES]


def make_worker(app: Flask, *, name: str | None = None) -> Worker:
    """A worker whose jobs run under `app`, telling the ledger when a work-horse dies."""
    tasks.use_app(app)
    _compile_email_templates(app)
    serving = queues(app, read_timeout=None)

    def horse_killed(job: Job, pid: int, status: int, _rusage: Any) -> None:
        log.warning("work-horse %s died (status %s) running %s", pid, status, job.id)
        _tell_ledger(app, job, f"the worker process died (status {status})")

    return Worker(
        serving,
        connection=serving[0].connection,
        name=name or f"{os.uname().nodename}.{os.getpid()}",
        work_horse_killed_handler=horse_killed,
        maintenance_interval=MAINTENANCE_SECONDS,
    )


def _compile_email_templates(app: Flask) -> None:
    """Compile the email templates once, here: each work-horse is a fork of this process and
    inherits them, where it would otherwise compile them for its one job and throw them away
    (a third of an email job's CPU time)."""
    env = app.jinja_env
    for name in env.list_templates(filter_func=lambda name: name.startswith("emails/")):
        env.get_template(name)


def work(app: Flask, *, burst: bool = False) -> None:
    """Serve the queues until SIGTERM (or, with `burst`, until they are empty). RQ's scheduler
    runs beside the worker: a retry after a delay waits in RQ's scheduled registry, and
    without a scheduler nothing would ever move it back onto its queue."""
    make_worker(app).work(burst=burst, with_scheduler=True)


def _tell_ledger(app: Flask, job: Job, error: str) -> None:
    """A job died without recording its failure: retrying, or failed when none are left."""
    payload = job.args[2] if len(job.args) > 2 and isinstance(job.args[2], dict) else {}
    delivery_id = payload.get("delivery_id")
    if delivery_id is None:
        return
    with app.app_context(), db.transaction() as session:
        if job.retries_left:
            deliveries.mark_retrying(session, int(delivery_id), error, utcnow())
        else:
            deliveries.mark_failed(session, int(delivery_id), error)
