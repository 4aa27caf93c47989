"""The relay: publishes outbox rows to RabbitMQ, and marks a row published only once the
broker has confirmed it.

Rows are claimed with FOR UPDATE SKIP LOCKED, so two relays never publish one row in
normal operation (a relay that dies between publish and commit republishes it; the
bridge turns the copy into the same RQ job id). Messages are persistent, published
with `mandatory` to a durable exchange, and carry the outbox id as `message_id`.
While RabbitMQ is down rows wait and the relay backs off; it wakes on PostgreSQL's
NOTIFY (or polls), so a message leaves within a second at low load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import threading
import time

import pika
import psycopg
from flask import Flask
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, UnroutableError

from app.core.metrics import RELAYED
from app.extensions import db
from app.jobs.broker import connect, declare_topology
from app.jobs.queues import Names
from app.services import outbox
from app.services.outbox import NOTIFY_CHANNEL, Message
from app.settings import get_settings

log = logging.getLogger(__name__)

BATCH = 200
POLL_SECONDS = 1.0
MAX_BACKOFF = 30.0


class Relay:
    """Publishes an app's outbox to its broker (see the module docstring)."""

    def __init__(self, app: Flask) -> None:
        settings = get_settings(app)
        if not settings.rabbitmq_url:
            raise RuntimeError("the relay needs RABBITMQ_URL")
        self.app = app
        self.url = settings.rabbitmq_url
        self.names = Names(settings.queue_prefix)
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self.heartbeat = 30  # seconds; the broker drops a connection silent for two

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set, backing off while the broker or database is down."""
        backoff = 0.5
        listener = _Listener(self.app)
        while not stop.is_set():
            try:
                self._keep_alive()
                published = self.publish_batch()
                backoff = 0.5
            except (AMQPError, OSError) as exc:
                log.warning("relay: broker unavailable (%s); retrying in %.1fs", exc, backoff)
                self._close()
                stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            except Exception:  # a database outage: keep going once it is back
                log.exception("relay: batch failed; retrying in %.1fs", backoff)
                stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            if published < BATCH:
                listener.wait(POLL_SECONDS)
        self._close()
        listener.close()

    def publish_batch(self) -> int:
        """Publish the oldest due rows in one transaction; returns how many were confirmed."""
        channel = self._open()
        confirmed: list[int] = []
        lost: AMQPError | OSError | None = None
        with self.app.app_context(), db.transaction() as session:
            for message in outbox.claim_unpublished(session, BATCH):
                try:
                    self._publish(channel, message)
                except (AMQPError, OSError) as exc:
                    lost = exc
                    break
                confirmed.append(message.id)
            # what the broker confirmed is marked (and committed) even when a later publish
            # failed, so only the rest is published again
            outbox.mark_published(session, confirmed)
        RELAYED.inc(len(confirmed))
        if lost is not None:
            raise lost
        return len(confirmed)

    def _keep_alive(self) -> None:
        """Answer the broker's heartbeats while idle: pika does only when called, and the
        broker drops a connection that misses two (an idle relay's, every minute)."""
        if self._connection is not None and self._connection.is_open:
            self._connection.process_data_events(time_limit=0)

    def _publish(self, channel: BlockingChannel, message: Message) -> None:
        properties = pika.BasicProperties(
            message_id=str(message.id),
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type="application/json",
        )
        body = json.dumps(message.payload).encode()
        try:
            channel.basic_publish(
                self.names.exchange, message.kind, body, properties, mandatory=True
            )
        except UnroutableError:  # no queue takes this kind: it must not vanish
            properties.headers = {"x-reason": f"unroutable routing key {message.kind}"}
            channel.basic_publish(self.names.dead_exchange, message.kind, body, properties)

    def _open(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._close()
            self._connection = connect(self.url, heartbeat=self.heartbeat)
            channel = self._connection.channel()
            channel.confirm_delivery()
            declare_topology(channel, self.names)
            self._channel = channel
        return self._channel

    def _close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(AMQPError):
                self._connection.close()
        self._connection = self._channel = None


class _Listener:
    """Waits for PostgreSQL's NOTIFY on the outbox channel (SQLite: just sleeps)."""

    def __init__(self, app: Flask) -> None:
        self._conn: psycopg.Connection | None = None
        url = db.engine_for(app).url
        if url.get_backend_name() == "postgresql":
            try:
                dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
                self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=2)
                self._conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except psycopg.Error:
                self._conn = None

    def wait(self, seconds: float) -> None:
        if self._conn is None:
            time.sleep(seconds)
            return
        try:
            ready, _, _ = select.select([self._conn.fileno()], [], [], seconds)
            if ready:
                for _ in self._conn.notifies(timeout=0):
                    pass
        except (psycopg.Error, OSError, ValueError):
            self.close()
            time.sleep(seconds)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
