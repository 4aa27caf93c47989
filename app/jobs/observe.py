"""What an operator watches of the background path: the outbox backlog and queue depths.

Read at scrape time (one COUNT, and RQ's queue lengths) rather than kept as gauges,
so they are right whichever process relayed or ran the messages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from app.core.prometheus import add_scrape_collector
from app.extensions import db
from app.jobs.queues import QUEUE_NAMES
from app.jobs.worker import queues
from app.services import outbox
from app.services.outbox import Backlog
from app.settings import get_settings

log = logging.getLogger(__name__)


def backlog(app: Flask) -> Backlog | None:
    """The outbox backlog, or None when the database cannot say."""
    try:
        with db.background(app):
            return outbox.backlog(db.session)
    except Exception as exc:  # noqa: BLE001 - a scrape or a readiness probe reports, never fails
        log.warning("outbox backlog unavailable: %s", exc)
        return None


class JobsCollector:
    """Prometheus collector for the outbox backlog and (with a broker) RQ queue depths."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        found = backlog(self.app)
        if found is not None:
            yield _gauge("app_outbox_pending", "Outbox messages not yet handed over", found.pending)
            yield _gauge(
                "app_outbox_oldest_age_seconds",
                "Age of the oldest message not yet handed over",
                found.oldest_age_seconds,
            )
            yield _gauge(
                "app_outbox_dead",
                "Dead letters: dead-lettered by the broker or given up by the embedded runner",
                found.dead,
            )
        if get_settings(self.app).jobs == "broker":
            yield from self._queue_depths()

    def _queue_depths(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("app_queue_depth", "RQ jobs waiting, by queue", labels=["queue"])
        try:
            for name, queue in zip(QUEUE_NAMES, queues(self.app), strict=True):
                depth.add_metric([name], queue.count)
        except Exception as exc:  # noqa: BLE001 - Redis down: no depths in this scrape
            log.warning("queue depths unavailable: %s", exc)
            return
        yield depth


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def register_jobs_metrics(app: Flask) -> None:
    """Have /metrics read the backlog and queue depths at every scrape."""
    add_scrape_collector(app, JobsCollector(app))
