"""The jobs page: what waits, runs and failed, and the buttons to send it again.

With a broker, RQ's queues (through the QueueAdmin that app/jobs registers):
depth, running and failed jobs with their error, requeue and delete. In the
embedded default there are no queues, so the page shows the outbox instead:
what waits to run and what waits for a retry. Both show dead letters, which
"Retry" sends again under a new message.

rq-dashboard was considered and not mounted: its pages run inline scripts and
styles (our CSP allows neither), change state with GETs and posts without CSRF
tokens, and it hangs its Redis client on the app.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, flash, url_for
from redis.exceptions import RedisError

from app.core.queue_admin import QueueAdmin, get_queue_admin
from app.errors import NotFound
from app.extensions import db
from app.htmx import render
from app.policy import policy
from app.security import current_actor
from app.services import dead_letters, outbox
from app.web.responses import see_other

log = logging.getLogger(__name__)

bp = Blueprint("jobs", __name__, url_prefix="/admin/jobs")

SHOWN = 50


@bp.get("")
@policy("admin")
def index() -> Response:
    """Queues (or the outbox), running and failed jobs, dead letters."""
    admin = get_queue_admin()
    return render(
        "admin/jobs.html",
        broker=admin is not None,
        rq=_read_queues(admin) if admin is not None else None,
        backlog=outbox.backlog(db.session),
        retrying=dead_letters.list_retrying(db.session, SHOWN),
        dead=dead_letters.list_dead(db.session, SHOWN),
    )


def _read_queues(admin: QueueAdmin) -> dict[str, object]:
    try:
        return {
            "counts": admin.counts(),
            "running": admin.running(SHOWN),
            "failed": admin.failed(SHOWN),
            "error": None,
        }
    except (RedisError, OSError) as exc:
        log.warning("jobs page: Redis unavailable: %s", exc)
        return {"counts": [], "running": [], "failed": [], "error": str(exc)}


@bp.post("/rq/<job_id>/requeue")
@policy("admin")
def requeue(job_id: str) -> Response:
    """Put a failed job back on its queue, under the same id."""
    done = _queue_admin().requeue(job_id)
    flash(
        f"Requeued job {job_id}." if done else "That job is no longer failed.",
        "success" if done else "warning",
    )
    return see_other(url_for("jobs.index"))


@bp.post("/rq/<job_id>/delete")
@policy("admin")
def delete(job_id: str) -> Response:
    """Forget a failed job (its delivery, if any, stays failed in the ledger)."""
    done = _queue_admin().delete(job_id)
    flash(
        f"Deleted job {job_id}." if done else "That job is no longer failed.",
        "success" if done else "warning",
    )
    return see_other(url_for("jobs.index"))


@bp.post("/dead/<int:message_id>/retry")
@policy("admin")
def retry_dead(message_id: int) -> Response:
    """Send a dead letter again under a new message."""
    with db.transaction() as session:
        row = dead_letters.retry(session, message_id, actor=current_actor())
    flash(f"Message {row.id} ({row.kind}) is on its way again.", "success")
    return see_other(url_for("jobs.index"))


def _queue_admin() -> QueueAdmin:
    admin = get_queue_admin()
    if admin is None:
        raise NotFound("There are no job queues in this mode; jobs run in-process.")
    return admin
