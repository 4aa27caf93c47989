"""Payments left pending by an unknown outcome: the reconciliation task looks each one up.

`job.payment_reconcile` is queued (with a delay) whenever a provider call went
unanswered; it resolves the payment or queues itself again, later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from app.core.prometheus import add_scrape_collector
from app.extensions import db
from app.payments import get_payment_service
from app.services import payment
from app.services.outbox import Message

log = logging.getLogger(__name__)


def reconcile_payment(message: Message, *, retry_in: float | None) -> None:
    """Look up one pending payment at its provider and apply what it says."""
    get_payment_service().reconcile(int(message.payload["payment_id"]))


class PaymentsCollector:
    """`app_payments_unknown_oldest_age_seconds`, read from the database at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        try:
            with db.background(self.app):
                age = payment.oldest_unknown_age(db.session)
        except Exception as exc:  # noqa: BLE001 - a scrape reports what it can, never fails
            log.warning("payment ages unavailable: %s", exc)
            return
        yield GaugeMetricFamily(
            "app_payments_unknown_oldest_age_seconds",
            "Age of the oldest payment whose outcome is not known yet (pending)",
            value=age,
        )


def register_payment_metrics(app: Flask) -> None:
    add_scrape_collector(app, PaymentsCollector(app))
