"""Faults on the background path, on the real PostgreSQL, Redis and RabbitMQ.

Outages are a FaultProxy cut in front of the shared service; crashes are real
SIGKILLs of real processes (a relay or bridge that kills itself at a chosen
instant, a work-horse killed by the test). What is asserted is what people see:
sign-ups answered quickly, emails arriving at an SMTP server exactly once, jobs
in RQ, messages in RabbitMQ, the ledger and the admin pages.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import StreamLostError

from app.jobs.bridge import job_id
from app.jobs.broker import connect
from app.jobs.queues import DELIVERY_LIMIT, RETRY_DELAYS
from app.jobs.relay import Relay
from app.jobs.worker import READ_TIMEOUT
from app.services.outbox import Message
from tests.conftest import login, make_settings, require
from tests.factories import make_role_accounts
from tests.faults.databases import own_database
from tests.faults.jobs_stack import (
    JobsStack,
    RecordingBridge,
    horse_of,
    iter_delivery_ids,
    sign_up,
    wait_until,
)
from tests.faults.proxy import FaultProxy
from tests.faults.smtp_sink import SmtpSink

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.rabbitmq]


@pytest.fixture(scope="module")
def jobs_db() -> Iterator[str]:
    """A database of its own: relays, bridges and workers in other processes commit."""
    with own_database("jobfaults") as url:
        yield url


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def stack(jobs_db: str, sink: SmtpSink, tmp_path: Path) -> Iterator[JobsStack]:
    prefix = f"test-jobfault-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        tmp_path,
        database_url=jobs_db,
        redis_url=require("REDIS_URL"),
        rabbitmq_url=require("RABBITMQ_URL"),
        smtp_url=sink.url,
        redis_key_prefix=prefix,
        queue_prefix=prefix,
        jobs_mode="broker",
        rate_limits_enabled=False,
        table_cache_ttl=0,
    )
    found = JobsStack(settings=settings, app=None)  # type: ignore[arg-type]
    found.app = found.app_with()
    yield found
    found.close(require("RABBITMQ_URL"), require("REDIS_URL"))


@pytest.fixture
def rabbit_proxy() -> Iterator[FaultProxy]:
    with FaultProxy.for_url(require("RABBITMQ_URL")) as proxy:
        yield proxy


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    with FaultProxy.for_url(require("REDIS_URL")) as proxy:
        yield proxy


def _expected_message_ids(stack: JobsStack) -> Counter[str]:
    """One Message-ID per delivery, each delivery owed by its own outbox message."""
    pairs = list(iter_delivery_ids(stack))
    assert len({message for _, message in pairs}) == len(pairs)
    return Counter(f"<delivery-{delivery}@localhost>" for delivery, _ in pairs)


def test_sign_ups_while_rabbitmq_is_unreachable_are_answered_and_mailed_once_after(
    stack: JobsStack, rabbit_proxy: FaultProxy, sink: SmtpSink
) -> None:
    app = stack.app_with(rabbitmq_url=rabbit_proxy.url(require("RABBITMQ_URL")))
    stack.relay(app)
    stack.bridge(RecordingBridge(app))
    client = app.test_client()
    before = [sign_up(client, f"before{i}@example.com") for i in range(5)]
    stack.work_here(lambda: sink.count() == 5, 30)

    rabbit_proxy.cut()
    during = [sign_up(client, f"during{i}@example.com") for i in range(50)]
    time.sleep(1.0)  # the relay tries, and fails, meanwhile
    waiting = [m for m in stack.outbox() if m.published_at is None]
    assert len(waiting) == 50 and sink.count() == 5
    usual = statistics.median(before)  # nothing waits on the broker (its timeout is 5 s)
    assert statistics.median(during) <= max(2 * usual, usual + 0.1), (before, during)
    assert max(during) < 2.5, during

    rabbit_proxy.restore()
    stack.work_here(lambda: sink.count() >= 55, 90)  # the 50 owed during the outage
    time.sleep(0.5)  # room for a duplicate to show up
    assert sink.message_ids() == _expected_message_ids(stack)
    recipients = sink.recipients()
    assert all(recipients[f"during{i}@example.com"] == 1 for i in range(50))
    assert sum(recipients.values()) == 55
    assert {d.state for d in stack.deliveries()} == {"sent"}


def test_a_relay_killed_between_publish_and_confirm_republishes_and_mail_arrives_once(
    stack: JobsStack, sink: SmtpSink
) -> None:
    stack.worker()
    sign_up(stack.app.test_client(), "ada@example.com")
    assert stack.crash("relay") == -signal.SIGKILL
    [message] = stack.outbox()
    assert message.published_at is None  # never recorded as published...
    assert stack.broker_ready(stack.names.queue("emails")) == 1  # ...but the broker has it

    stack.relay()
    wait_until(lambda: stack.outbox()[0].published_at is not None, 15, "the republish")
    assert stack.broker_ready(stack.names.queue("emails")) == 2  # the same message, twice
    bridge = RecordingBridge(stack.app)
    stack.bridge(bridge)
    wait_until(lambda: sink.count() == 1 and len(bridge.seen) == 2, 30, "the email")
    time.sleep(1.0)
    assert [mid for mid, _ in bridge.seen] == [str(message.id)] * 2
    assert sink.message_ids() == _expected_message_ids(stack)
    assert [(d.recipient, d.state, d.attempts) for d in stack.deliveries()] == [
        ("ada@example.com", "sent", 1)
    ]


class _BrokerGoesAway(Relay):
    """The real relay, whose connection is lost after `confirmed` publishes."""

    def __init__(self, app: Flask, confirmed: int) -> None:
        super().__init__(app)
        self.left = confirmed

    def _publish(self, channel: BlockingChannel, message: Message) -> None:
        if self.left == 0:
            self._close()
            raise StreamLostError("Stream connection lost")
        self.left -= 1
        super()._publish(channel, message)


def test_a_relay_losing_the_broker_mid_batch_keeps_what_was_confirmed(stack: JobsStack) -> None:
    client = stack.app.test_client()
    for i in range(3):
        sign_up(client, f"user{i}@example.com")
    with pytest.raises(StreamLostError):
        _BrokerGoesAway(stack.app, confirmed=2).publish_batch()
    assert [m.published_at is not None for m in stack.outbox()] == [True, True, False]
    assert stack.broker_ready(stack.names.queue("emails")) == 2
    assert Relay(stack.app).publish_batch() == 1  # only the one never confirmed goes again
    assert stack.broker_ready(stack.names.queue("emails")) == 3


class _CountingRelay(Relay):
    """The real relay, counting the connections it opens."""

    opened = 0

    def _open(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self.opened += 1
        return super()._open()


def test_an_idle_relay_keeps_its_broker_connection(stack: JobsStack) -> None:
    relay = _CountingRelay(stack.app)
    relay.heartbeat = 1  # the broker drops a connection silent for two heartbeats
    assert relay.publish_batch() == 0  # connected
    stack.run_in_thread(relay.run)
    time.sleep(4.0)  # idle: nothing to publish
    sign_up(stack.app.test_client(), "ada@example.com")
    wait_until(lambda: stack.outbox()[0].published_at is not None, 10, "the publish")
    assert relay.opened == 1  # no reconnect: the connection lived through the idle time


def test_a_bridge_killed_between_enqueue_and_ack_makes_no_second_job(
    stack: JobsStack, sink: SmtpSink
) -> None:
    sign_up(stack.app.test_client(), "ada@example.com")
    stack.relay()
    wait_until(lambda: stack.outbox()[0].published_at is not None, 15, "the publish")
    assert stack.crash("bridge") == -signal.SIGKILL
    [message] = stack.outbox()
    expected_job = job_id(stack.names, str(message.id))
    assert stack.rq_job_ids() == [expected_job]  # enqueued, never acknowledged

    bridge = RecordingBridge(stack.app)
    stack.bridge(bridge)
    wait_until(lambda: bridge.seen == [(str(message.id), True)], 15, "the redelivery")
    wait_until(lambda: stack.broker_ready(stack.names.queue("emails")) == 0, 5, "the ack")
    assert stack.rq_job_ids() == [expected_job]
    stack.worker()
    wait_until(lambda: sink.count() == 1, 60, "the email")
    time.sleep(1.0)
    assert sink.message_ids() == _expected_message_ids(stack)


def _delivery_state(stack: JobsStack) -> tuple[str, int, str]:
    [delivery] = stack.deliveries()
    return delivery.state, delivery.attempts, delivery.last_error or ""


def test_a_work_horse_killed_mid_send_is_retried_and_the_email_arrives_once(
    stack: JobsStack, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(RETRY_DELAYS, "emails", (1, 1))  # the bridge gives the job this schedule
    worker = stack.worker()
    sink.hold()
    sign_up(stack.app.test_client(), "ada@example.com")
    stack.relay()
    stack.bridge()
    assert sink.held.wait(60), "the work-horse never reached the SMTP server"
    os.kill(horse_of(worker.pid), signal.SIGKILL)
    wait_until(lambda: _delivery_state(stack)[0] == "retrying", 15, "the ledger to hear of it")
    assert "worker process died" in _delivery_state(stack)[2]
    sink.accept()  # the retry, held meanwhile, is accepted
    wait_until(lambda: sink.count() == 1, 30, "the retried email")
    wait_until(lambda: _delivery_state(stack)[0] == "sent", 10, "the ledger")
    time.sleep(1.0)
    assert sink.message_ids() == _expected_message_ids(stack)
    assert _delivery_state(stack)[:2] == ("sent", 2)
    assert stack.failed_job_ids() == []


def test_a_work_horse_killed_on_every_try_ends_failed_in_rq_and_in_the_ledger(
    stack: JobsStack, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(RETRY_DELAYS, "emails", (1,))  # two tries in all
    with stack.app.app_context():
        from app.extensions import db

        with db.transaction() as session:
            make_role_accounts(session)
    worker = stack.worker()
    sink.hold()
    sign_up(stack.app.test_client(), "ada@example.com")
    stack.relay()
    stack.bridge()
    for _ in range(2):
        assert sink.held.wait(60), "the work-horse never reached the SMTP server"
        sink.held.clear()
        os.kill(horse_of(worker.pid), signal.SIGKILL)
    [message] = stack.outbox()
    expected_job = job_id(stack.names, str(message.id))
    wait_until(lambda: stack.failed_job_ids() == [expected_job], 15, "the failed registry")
    state, attempts, error = _delivery_state(stack)
    assert (state, attempts) == ("failed", 2) and "worker process died" in error
    sink.accept()
    time.sleep(1.5)  # no third try
    assert sink.count() == 0
    client = stack.app.test_client()
    login(client, "admin@example.com")
    page = client.get("/admin/deliveries?state=failed").get_data(as_text=True)
    assert "ada@example.com" in page and "worker process died" in page


def test_redis_unreachable_under_the_bridge_loses_nothing_and_enqueues_each_once(
    stack: JobsStack, redis_proxy: FaultProxy, sink: SmtpSink
) -> None:
    bridge = RecordingBridge(stack.app_with(redis_url=redis_proxy.url(require("REDIS_URL"))))
    redis_proxy.cut()
    client = stack.app.test_client()  # the web reaches Redis directly
    for i in range(20):
        sign_up(client, f"user{i}@example.com")
    stack.relay()
    stack.bridge(bridge)
    wait_until(lambda: len(bridge.seen) == 1, 15, "the bridge to get a message")
    wait_until(lambda: all(m.published_at for m in stack.outbox()), 15, "the relay")
    time.sleep(2.0)  # the outage goes on
    assert stack.rq_job_ids() == []
    assert len(bridge.seen) == 1  # held, not returned: no delivery attempt is burnt
    assert stack.broker_ready(stack.names.queue("emails")) == 0  # all 20 are with the bridge

    redis_proxy.restore()
    wait_until(lambda: len(stack.rq_job_ids()) == 20, 30, "every message as a job")
    expected = sorted(job_id(stack.names, str(m.id)) for m in stack.outbox())
    assert sorted(stack.rq_job_ids()) == expected
    assert sorted(mid for mid, _ in bridge.seen) == sorted(str(m.id) for m in stack.outbox())
    assert not any(redelivered for _, redelivered in bridge.seen)
    assert [m.dead_at for m in stack.outbox()] == [None] * 20
    stack.work_here(lambda: sink.count() == 20, 60)
    assert sink.message_ids() == _expected_message_ids(stack)


def test_a_bridge_told_to_stop_during_a_redis_outage_stops_and_gives_the_message_back(
    stack: JobsStack, redis_proxy: FaultProxy
) -> None:
    bridge = RecordingBridge(stack.app_with(redis_url=redis_proxy.url(require("REDIS_URL"))))
    redis_proxy.cut()
    sign_up(stack.app.test_client(), "ada@example.com")
    assert Relay(stack.app).publish_batch() == 1
    stop = stack.bridge(bridge)
    wait_until(lambda: len(bridge.seen) == 1, 15, "the bridge to hold the message")
    stop.set()  # SIGTERM to `flask bridge`
    [(_, thread)] = [t for t in stack._threads if t[0] is stop]
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert stack.broker_ready(stack.names.queue("emails")) == 1  # waiting for the next bridge
    assert stack.rq_job_ids() == []


def test_a_bridge_stuck_on_a_hung_redis_stops_when_told_and_the_next_enqueues_once(
    stack: JobsStack, redis_proxy: FaultProxy, sink: SmtpSink
) -> None:
    client = stack.app.test_client()
    for i in range(3):
        sign_up(client, f"user{i}@example.com")
    redis_proxy.pause()  # Redis accepts and reads, and never answers
    stuck = RecordingBridge(stack.app_with(redis_url=redis_proxy.url(require("REDIS_URL"))))
    stack.relay()
    stop = stack.bridge(stuck)
    wait_until(lambda: len(stuck.seen) == 1, 15, "the bridge to take a message")
    time.sleep(READ_TIMEOUT + 1.0)  # past the read timeout: held, not stuck in a read
    assert len(stuck.seen) == 1 and stack.rq_job_ids() == []
    stop.set()  # SIGTERM: a bridge blocked in a read would never see it
    [(_, thread)] = [t for t in stack._threads if t[0] is stop]
    thread.join(timeout=READ_TIMEOUT * 3 + 5)
    assert not thread.is_alive()
    assert stack.broker_ready(stack.names.queue("emails")) == 3  # given back, for the next

    redis_proxy.restore()
    bridge = RecordingBridge(stack.app_with(redis_url=redis_proxy.url(require("REDIS_URL"))))
    stack.bridge(bridge)
    wait_until(lambda: len(stack.rq_job_ids()) == 3, 30, "every message as a job")
    assert sorted(stack.rq_job_ids()) == sorted(
        job_id(stack.names, str(m.id)) for m in stack.outbox()
    )
    stack.work_here(lambda: sink.count() == 3, 60)
    assert sink.message_ids() == _expected_message_ids(stack)


def test_messages_a_crashing_consumer_hands_back_are_not_dead_lettered_by_the_crashes(
    stack: JobsStack,
) -> None:
    """RabbitMQ 3.10 counts a message returned by a closed channel as a failed delivery, so
    every bridge crash with messages in hand spends one of their deliveries: the limit must
    leave room for many crashes before it calls a message poison."""
    sign_up(stack.app.test_client(), "ada@example.com")
    assert Relay(stack.app).publish_batch() == 1
    crashes = 6  # more than a limit of 5 allowed
    for _ in range(crashes):  # take the message and vanish without an ack, as a killed bridge
        connection = connect(require("RABBITMQ_URL"))
        channel = connection.channel()
        method, _, _ = channel.basic_get(stack.names.queue("emails"))
        assert method is not None
        connection.close()
    bridge = RecordingBridge(stack.app)
    stack.bridge(bridge)
    [message] = stack.outbox()
    wait_until(lambda: stack.rq_job_ids() == [job_id(stack.names, str(message.id))], 15, "job")
    assert bridge.seen == [(str(message.id), True)]
    assert stack.outbox()[0].dead_at is None and stack.deliveries()[0].state == "pending"
    assert crashes < DELIVERY_LIMIT


class _PoisonBridge(RecordingBridge):
    """The real bridge, except that one message always makes it raise."""

    poison: str = ""

    def _enqueue(self, message_id: str, kind: str, payload: dict[str, Any]) -> None:
        if message_id == self.poison:
            raise RuntimeError("this message cannot be enqueued")
        super()._enqueue(message_id, kind, payload)


def test_a_message_that_always_raises_is_dead_lettered_and_shown_to_admins(
    stack: JobsStack,
) -> None:
    from app.extensions import db

    with stack.app.app_context(), db.transaction() as session:
        make_role_accounts(session)
    client = stack.app.test_client()
    sign_up(client, "poison@example.com")
    sign_up(client, "fine@example.com")
    poison, fine = (d.message_id for d in stack.deliveries())
    bridge = _PoisonBridge(stack.app)
    bridge.poison = str(poison)
    stack.relay()
    stack.bridge(bridge)
    wait_until(lambda: stack.outbox()[0].dead_at is not None, 30, "the dead letter")
    tries = Counter(mid for mid, _ in bridge.seen)
    assert tries == {str(poison): DELIVERY_LIMIT + 1, str(fine): 1}
    assert stack.rq_job_ids() == [job_id(stack.names, str(fine))]
    poison_delivery = stack.deliveries()[0]
    assert poison_delivery.state == "dead" and "delivery_limit" in (
        poison_delivery.last_error or ""
    )
    admin = stack.app.test_client()
    login(admin, "admin@example.com")
    jobs_page = admin.get("/admin/jobs").get_data(as_text=True)
    assert "Dead letters" in jobs_page and "delivery_limit" in jobs_page
    ledger = admin.get("/admin/deliveries?state=dead").get_data(as_text=True)
    assert "poison@example.com" in ledger and "fine@example.com" not in ledger
