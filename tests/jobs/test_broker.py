"""The full path on the real services: commit -> outbox -> relay -> RabbitMQ -> bridge -> RQ ->
worker -> email, once, and a message delivered twice makes one job and one email."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from flask import Flask
from rq import SimpleWorker
from sqlalchemy import select, update
from standardwebhooks import Webhook

from app import create_app
from app.core.events import Actor
from app.core.mail import MemoryMailTransport
from app.core.netguard import Rules, parse_networks
from app.extensions import db
from app.jobs import tasks
from app.jobs.bridge import Bridge
from app.jobs.broker import TopologyMismatch, connect, declare_topology
from app.jobs.queues import QUEUE_NAMES, Names
from app.jobs.relay import Relay
from app.jobs.worker import queues
from app.models import Delivery, OutboxMessage
from app.services import items as item_service
from app.services import webhooks
from app.settings import get_settings
from tests.conftest import make_settings, require
from tests.factories import PASSWORD, make_user
from tests.webhooks.receiver import start_receiver

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]


@pytest.fixture
def broker_app(sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    prefix = f"test-jobs-{uuid.uuid4().hex[:8]}"
    app = create_app(
        make_settings(
            tmp_path,
            database_url=sqlite_url,
            redis_url=require("REDIS_URL"),
            rabbitmq_url=require("RABBITMQ_URL"),
            redis_key_prefix=prefix,
            queue_prefix=prefix,
            jobs_mode="broker",
        )
    )
    app.config["WTF_CSRF_ENABLED"] = False
    app.extensions["mail"] = MemoryMailTransport()
    tasks.use_app(app)
    yield app
    names = Names(prefix)
    connection = connect(require("RABBITMQ_URL"))
    channel = connection.channel()
    for name in (*(names.queue(q) for q in QUEUE_NAMES), names.dead_queue):
        channel.queue_delete(name)
    channel.exchange_delete(names.exchange)
    channel.exchange_delete(names.dead_exchange)
    connection.close()
    store = redis.Redis.from_url(require("REDIS_URL"))
    keys = [*store.scan_iter(f"*{prefix}*")]
    if keys:
        store.delete(*keys)
    db.dispose(app)


def _bridge_until(app: Flask, done: callable, timeout: float = 15.0) -> None:  # type: ignore[valid-type]
    stop = threading.Event()
    thread = threading.Thread(target=Bridge(app).run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)


def _jobs(app: Flask) -> int:
    return sum(q.count for q in queues(app))


def test_a_sign_up_email_travels_the_whole_path_once(broker_app: Flask) -> None:
    client = broker_app.test_client()
    form = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    assert client.post("/register", data={**form, "confirm_password": PASSWORD}).status_code == 303
    assert Relay(broker_app).publish_batch() == 1
    _bridge_until(broker_app, lambda: _jobs(broker_app) == 1)
    assert _jobs(broker_app) == 1
    serving = queues(broker_app)
    SimpleWorker(serving, connection=serving[0].connection).work(burst=True)
    transport: MemoryMailTransport = broker_app.extensions["mail"]
    assert [(m.to, m.subject) for m in transport.outbox] == [
        ("ada@example.com", "Welcome to Ledgerly")
    ]
    with broker_app.app_context():
        assert db.session.scalars(select(Delivery.state)).all() == ["sent"]
        # the relay published it again (it died before its commit): same job id, no new job
        db.session.execute(update(OutboxMessage).values(published_at=None))
        db.session.commit()
    assert Relay(broker_app).publish_batch() == 1
    _bridge_until(broker_app, lambda: False, timeout=2.0)
    assert _jobs(broker_app) == 0
    SimpleWorker(serving, connection=serving[0].connection).work(burst=True)
    assert len(transport.outbox) == 1


def test_a_webhook_delivery_runs_on_the_webhooks_queue(broker_app: Flask, tmp_path: Path) -> None:
    receiver = start_receiver()
    settings = broker_app.extensions["settings"]
    broker_app.extensions["settings"] = replace(settings, webhook_allowed_networks="127.0.0.1/32")
    try:
        with broker_app.app_context(), db.transaction() as session:
            endpoint = webhooks.create_endpoint(
                session,
                webhooks.EndpointCreate(url=receiver.url, events=["item.created"]),
                Rules(allow_http=True, allowed=parse_networks("127.0.0.1/32")),
                actor=Actor(),
            )
            secret = endpoint.secret
            owner = make_user(session, "owner@example.com")
            item_service.create_item(
                session, owner, item_service.ItemCreate(name="Lamp", price="2.00"), actor=Actor()
            )
        assert Relay(broker_app).publish_batch() == 1
        _bridge_until(broker_app, lambda: _jobs(broker_app) == 1)
        waiting = {q.name.rsplit(".", 1)[-1]: q.count for q in queues(broker_app)}
        assert waiting["webhooks"] == 1 and waiting["emails"] == waiting["default"] == 0
        serving = queues(broker_app)
        SimpleWorker(serving, connection=serving[0].connection).work(burst=True)
        [got] = receiver.received
        assert Webhook(secret).verify(got.body, got.headers)["data"]["name"] == "Lamp"
        with broker_app.app_context():
            assert db.session.scalars(select(Delivery.state)).all() == ["sent"]
    finally:
        receiver.stop()


def test_a_queue_declared_with_an_older_delivery_limit_stops_the_process_with_what_to_do(
    broker_app: Flask,
) -> None:
    names = Names(get_settings(broker_app).queue_prefix)
    connection = connect(require("RABBITMQ_URL"))
    try:
        old = {"x-queue-type": "quorum", "x-delivery-limit": 5}
        connection.channel().queue_declare(names.queue("emails"), durable=True, arguments=old)
        with pytest.raises(TopologyMismatch, match=f"delete_queue {names.queue('emails')}"):
            declare_topology(connection.channel(), names)
    finally:
        connection.close()
