"""The app's own Prometheus counters (request metrics are app/core/prometheus.py's).

Plain prometheus_client objects, no Flask: services, jobs and the CLI count too.
"""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_PUBLISHED = Counter(
    "app_events_published_total", "Events published on the EventBus", ["type"]
)
LOGINS = Counter("app_logins_total", "Sign-in attempts by outcome", ["outcome"])
