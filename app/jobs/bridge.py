"""The bridge: RabbitMQ messages become RQ jobs, acknowledged only once Redis has the job.

Manual acks with a prefetch limit. The job id is derived from the message id, and
RQ refuses a second job with that id, so a redelivered message (a bridge killed
between enqueue and ack) makes no second job. While Redis is down or hung (its
client has a read timeout) the message is neither acked nor returned: the bridge
waits, keeping the connection alive, and enqueues once Redis is back, so no
delivery attempt is burnt on our outage.
Undecodable messages and routing keys with no task go to the dead-letter queue
with the reason; a message that keeps failing here is returned until RabbitMQ's
delivery limit dead-letters it. The bridge also records what reaches the
dead-letter queue, so the ledger and the admin pages show it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

import pika
import redis
from flask import Flask
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from app.core.metrics import BRIDGE_ENQUEUED, DEAD_LETTERED
from app.extensions import db
from app.jobs.broker import connect, declare_topology
from app.jobs.dispatch import task_for
from app.jobs.queues import JOB_TIMEOUTS, QUEUE_NAMES, Names, retry_delays
from app.jobs.worker import queues
from app.services import deliveries, outbox
from app.services.outbox import queue_for
from app.settings import get_settings

log = logging.getLogger(__name__)

PREFETCH = 50
RESULT_TTL = 24 * 3600  # a finished job id keeps refusing duplicates this long
FAILURE_TTL = 7 * 24 * 3600
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def job_id(names: Names, message_id: str) -> str:
    """The RQ job id of a broker message: the same message always makes the same job."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{names.prefix}-msg-{message_id}")  # RQ's rule


class _Stopping(Exception):
    """The bridge was told to stop while it held a message it could not enqueue."""


class Bridge:
    """Consumes an app's queues into RQ (see the module docstring)."""

    def __init__(self, app: Flask) -> None:
        settings = get_settings(app)
        if not settings.rabbitmq_url or not settings.redis_url:
            raise RuntimeError("the bridge needs RABBITMQ_URL and REDIS_URL")
        self.app = app
        self.url = settings.rabbitmq_url
        self.names = Names(settings.queue_prefix)
        self.rq: dict[str, Queue] = dict(zip(QUEUE_NAMES, queues(app), strict=True))
        self._connection: pika.BlockingConnection | None = None
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, reconnecting with backoff when the broker goes away."""
        self._stop = stop
        backoff = 0.5
        while not stop.is_set():
            try:
                self._consume(stop)
                backoff = 0.5
            except (AMQPError, OSError) as exc:
                log.warning("bridge: broker unavailable (%s); retrying in %.1fs", exc, backoff)
                stop.wait(backoff)
                backoff = min(30.0, backoff * 2)

    def _consume(self, stop: threading.Event) -> None:
        self._connection = connection = connect(self.url)
        try:
            channel = connection.channel()
            channel.confirm_delivery()  # a dead-letter we publish is confirmed before the ack
            declare_topology(channel, self.names)
            channel.basic_qos(prefetch_count=PREFETCH)
            for name in QUEUE_NAMES:
                channel.basic_consume(self.names.queue(name), self._on_message)
            channel.basic_consume(self.names.dead_queue, self._on_dead)
            while not stop.is_set():
                connection.process_data_events(time_limit=1)
        finally:
            if connection.is_open:
                connection.close()

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        if self._stop.is_set():  # prefetched before the stop: back to the queue, untried
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        try:
            payload = json.loads(body)
            message_id = str(int(props.message_id))
            if not isinstance(payload, dict):
                raise ValueError("the payload is not an object")
        except (ValueError, TypeError) as exc:
            self._dead_letter(channel, method, props, body, f"undecodable message: {exc}")
            return
        kind = method.routing_key
        if task_for(kind) is None:
            self._dead_letter(channel, method, props, body, f"no task for routing key {kind}")
            return
        try:
            self._enqueue(message_id, kind, payload)
        except _Stopping:  # told to stop while Redis is down: back to the queue, for later
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        except Exception:  # returned; RabbitMQ's delivery limit dead-letters a poison message
            log.exception("bridge: message %s (%s) could not be enqueued", message_id, kind)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        channel.basic_ack(method.delivery_tag)

    def _enqueue(self, message_id: str, kind: str, payload: dict[str, Any]) -> None:
        """Enqueue the job, waiting out a Redis outage without giving the message back."""
        queue = queue_for(kind)
        delays = retry_delays(queue)
        backoff = 0.5
        while True:
            try:
                self.rq[queue].enqueue_call(
                    "app.jobs.tasks.run_message",
                    args=(int(message_id), kind, payload),
                    job_id=job_id(self.names, message_id),
                    unique=True,
                    retry=Retry(max=len(delays), interval=delays),
                    timeout=JOB_TIMEOUTS[queue],
                    result_ttl=RESULT_TTL,
                    failure_ttl=FAILURE_TTL,
                )
            except DuplicateJobError:
                BRIDGE_ENQUEUED.labels(outcome="duplicate").inc()
                return
            except REDIS_DOWN as exc:
                if self._stop.is_set():
                    raise _Stopping from exc
                log.warning("bridge: Redis unavailable (%s); holding %s", exc, message_id)
                assert self._connection is not None
                self._connection.sleep(backoff)  # keeps heartbeats going; the message stays ours
                backoff = min(10.0, backoff * 2)
                continue
            BRIDGE_ENQUEUED.labels(outcome="enqueued").inc()
            return

    def _dead_letter(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        props: BasicProperties,
        body: bytes,
        reason: str,
    ) -> None:
        log.warning("bridge: dead-lettering %s: %s", props.message_id, reason)
        headers = {**(props.headers or {}), "x-reason": reason}
        dead = BasicProperties(
            message_id=props.message_id,
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type=props.content_type,
            headers=headers,
        )
        channel.basic_publish(self.names.dead_exchange, method.routing_key, body, dead)
        channel.basic_ack(method.delivery_tag)

    def _on_dead(
        self, channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        """Record a dead-lettered message on its outbox row and its ledger entry."""
        reason = _reason(props)
        DEAD_LETTERED.labels(reason=reason.split(":", 1)[0][:40]).inc()
        try:
            message_id = int(props.message_id)
        except (TypeError, ValueError):
            log.error("bridge: a dead letter without a message id: %r", body[:200])
            channel.basic_ack(method.delivery_tag)
            return
        with self.app.app_context(), db.transaction() as session:
            message = outbox.mark_dead(session, message_id, reason)
            delivery_id = message.payload.get("delivery_id") if message else None
            if delivery_id is not None:
                deliveries.mark_dead(session, int(delivery_id), reason)
        channel.basic_ack(method.delivery_tag)


def _reason(props: BasicProperties) -> str:
    """Why a message was dead-lettered: ours (x-reason), or the broker's (x-death)."""
    headers = props.headers or {}
    if "x-reason" in headers:
        return str(headers["x-reason"])
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths[0], dict):
        death = deaths[0]
        return f"{death.get('reason', 'dead-lettered')}: after {death.get('count', '?')} deliveries"
    return "dead-lettered"
