"""RabbitMQ connections and the topology every process declares (idempotently) at start."""

from __future__ import annotations

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker

from app.jobs.queues import BINDINGS, DELIVERY_LIMIT, QUEUE_NAMES, Names


def connect(url: str, *, heartbeat: int = 30) -> pika.BlockingConnection:
    """A blocking connection with timeouts short enough to notice an outage quickly."""
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 30
    params.socket_timeout = 5
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


PRECONDITION_FAILED = 406


class TopologyMismatch(RuntimeError):
    """A queue exists with other arguments (an older delivery limit, say). RabbitMQ cannot
    change a queue's arguments, so retrying would loop forever: the process stops and says
    what to do."""


def declare_topology(channel: BlockingChannel, names: Names) -> None:
    """The exchange, a quorum queue per kind of work with a delivery limit, and the DLQ."""
    channel.exchange_declare(names.exchange, exchange_type="topic", durable=True)
    channel.exchange_declare(names.dead_exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(names.dead_queue, durable=True)
    channel.queue_bind(names.dead_queue, names.dead_exchange)
    for queue in QUEUE_NAMES:
        arguments = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": names.dead_exchange,
        }
        try:
            channel.queue_declare(names.queue(queue), durable=True, arguments=arguments)
        except ChannelClosedByBroker as exc:
            if exc.reply_code != PRECONDITION_FAILED:
                raise
            raise TopologyMismatch(
                f"RabbitMQ queue {names.queue(queue)!r} exists with other arguments than "
                f"{arguments} ({exc.reply_text}). Stop the relays, let the previous "
                "version's bridges empty it, delete it (rabbitmqctl delete_queue "
                f"{names.queue(queue)}) and start this version: it is declared anew."
            ) from exc
        channel.queue_bind(names.queue(queue), names.exchange, routing_key=BINDINGS[queue])
