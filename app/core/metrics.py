"""The app's own Prometheus counters (request metrics are app/core/prometheus.py's).

Plain prometheus_client objects, no Flask: services, jobs and the CLI count too.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_PUBLISHED = Counter(
    "app_events_published_total", "Events published on the EventBus", ["type"]
)
LOGINS = Counter("app_logins_total", "Sign-in attempts by outcome", ["outcome"])
CIRCUIT_STATE = Gauge(
    "app_circuit_state",
    "Circuit breaker per backing service: 0 closed, 1 half-open, 2 open",
    ["service"],
    multiprocess_mode="max",
)
CIRCUIT_OPENED = Counter(
    "app_circuit_opened_total", "Times a backing service's circuit breaker opened", ["service"]
)
UNAVAILABLE = Counter(
    "app_unavailable_total", "Requests answered 503 because a service was down", ["service"]
)
