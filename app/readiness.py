"""Is each backing service up? One set of checks for /readyz and for /metrics.

/readyz answers a load balancer; `app_service_up{service}` lets Prometheus alert on the
same checks (ops/prometheus/alerts.yml), so the two can never disagree. A service that
is not configured (embedded mode) is left out of both.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from app.core.health import CheckResult, check_database, check_rabbitmq, check_redis
from app.core.prometheus import add_scrape_collector
from app.extensions import db
from app.settings import get_settings


def check_services(app: Flask) -> dict[str, CheckResult]:
    """Check the database (both pools), Redis and RabbitMQ; never raises."""
    settings = get_settings(app)
    with app.app_context():
        engines = db.engines
    return {
        "database": check_database(*engines),
        "redis": check_redis(settings.redis_url),
        "rabbitmq": check_rabbitmq(settings.rabbitmq_url),
    }


class ReadinessCollector:
    """`app_service_up{service}`: 1 when /readyz would call it up, 0 when down."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "app_service_up",
            "Backing service reachable from this process (the checks /readyz runs): 1 up, 0 down",
            labels=["service"],
        )
        for service, result in check_services(self.app).items():
            if result.state != "disabled":
                up.add_metric([service], 1.0 if result.state == "up" else 0.0)
        yield up


def register_readiness_metrics(app: Flask) -> None:
    """Have /metrics run the readiness checks at every scrape."""
    add_scrape_collector(app, ReadinessCollector(app))
