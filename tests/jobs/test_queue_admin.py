"""The jobs page with a broker: RQ queue counts, failed jobs with their error, requeue, delete."""

from __future__ import annotations

import pytest
from flask import Flask
from rq import SimpleWorker

from app.core.queue_admin import get_queue_admin
from app.extensions import db
from app.jobs.worker import queues
from tests.conftest import login
from tests.factories import make_role_accounts
from tests.jobs.test_broker import broker_app  # noqa: F401 - the fixture

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]


def test_failed_jobs_are_listed_requeued_and_deleted(broker_app: Flask) -> None:  # noqa: F811
    serving = queues(broker_app)
    default = serving[2]
    job = default.enqueue_call(
        "app.jobs.tasks.run_message", args=(7, "nope.unknown", {}), job_id="t-failing-job"
    )
    SimpleWorker(serving, connection=default.connection).work(burst=True)
    admin = get_queue_admin(broker_app)
    assert admin is not None
    counts = {c.name: c for c in admin.counts()}
    assert counts["default"].failed == 1 and counts["default"].queued == 0
    [failed] = admin.failed(10)
    assert (failed.id, failed.kind, failed.message_id, failed.queue) == (
        job.id,
        "nope.unknown",
        7,
        "default",
    )
    assert "LookupError: no task for 'nope.unknown'" in failed.error
    with broker_app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    client = broker_app.test_client()
    login(client, "admin@example.com")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "Failed jobs" in page and "t-failing-job" in page and "no task for" in page
    assert client.post("/admin/jobs/rq/t-failing-job/requeue").status_code == 303
    assert admin.counts()[2].queued == 1 and admin.failed(10) == []
    SimpleWorker(serving, connection=default.connection).work(burst=True)
    assert [j.id for j in admin.failed(10)] == ["t-failing-job"]
    assert client.post("/admin/jobs/rq/t-failing-job/delete").status_code == 303
    assert admin.failed(10) == [] and admin.counts()[2].failed == 0
    assert admin.requeue("t-failing-job") is False and admin.delete("../etc") is False
