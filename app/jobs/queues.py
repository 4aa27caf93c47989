"""Names and schedules shared by the relay, the bridge, the workers and the embedded runner.

RabbitMQ topology (declared by `declare_topology`, idempotent): one durable topic
exchange; one quorum queue per kind of work, bound by routing-key prefix, each
with an explicit delivery limit and a dead-letter exchange, so a message that
keeps failing ends in the dead-letter queue instead of looping or vanishing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

QUEUE_NAMES = ("emails", "webhooks", "default")
BINDINGS = {"emails": "email.#", "webhooks": "webhook.#", "default": "job.#"}
# Redeliveries before RabbitMQ dead-letters a message. Before 4.3 a quorum queue counts every
# return as a failed delivery, a killed bridge's unacked messages included, so the limit
# leaves room for many crashes; a message that really fails in the bridge is nacked at once,
# so even 20 tries take milliseconds.
DELIVERY_LIMIT = 20
RETRY_DELAYS = {  # seconds before each retry of a failed task; then it is failed
    "emails": (5, 30, 120, 600, 1800),
    "webhooks": (5, 30, 120, 600, 1800),
    "default": (10, 60, 300),
}
JOB_TIMEOUTS = {"emails": 60, "webhooks": 60, "default": 1800}


@dataclass(frozen=True)
class Names:
    """Broker and RQ names under a prefix (QUEUE_PREFIX), so runs and apps never mix."""

    prefix: str

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"

    def queue(self, name: str) -> str:
        """The broker queue (and RQ queue) for one kind of work."""
        return f"{self.prefix}.{name}"


def retry_delays(queue: str, *, jitter: float = 0.2) -> list[int]:
    """The retry schedule of a queue, each delay moved by up to ±jitter so retries spread."""
    return [max(1, round(d * random.uniform(1 - jitter, 1 + jitter))) for d in RETRY_DELAYS[queue]]


def max_attempts(queue: str) -> int:
    """The first try plus every retry."""
    return 1 + len(RETRY_DELAYS[queue])
