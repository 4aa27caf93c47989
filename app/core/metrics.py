"""The app's own Prometheus counters (request metrics are app/core/prometheus.py's).

Plain prometheus_client objects, no Flask: services, jobs and the CLI count too.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
JOB_SECONDS = Histogram(
    "app_job_duration_seconds",
    "Time a task ran, by queue",
    ["queue"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)
JOB_FAILURES = Counter("app_job_failures_total", "Task runs that raised, by queue", ["queue"])
RELAYED = Counter("app_outbox_relayed_total", "Outbox messages the broker confirmed")
BRIDGE_ENQUEUED = Counter(
    "app_bridge_enqueued_total", "Broker messages turned into RQ jobs, by outcome", ["outcome"]
)
DEAD_LETTERED = Counter(
    "app_dead_letters_total", "Messages that ended in the dead-letter queue, by reason", ["reason"]
)
EMAILS = Counter("app_emails_total", "Emails by outcome (sent, failed)", ["outcome"])
WEBHOOK_DELIVERIES = Counter(
    "app_webhook_deliveries_total",
    "Webhook attempts by outcome (sent, retrying, failed, disabled)",
    ["outcome"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "app_webhook_attempt_seconds",
    "Time a webhook attempt took",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "app_webhook_endpoints_disabled_total", "Webhook endpoints turned off, by reason", ["reason"]
)
# Exported at 0 from the start: Prometheus's increase() cannot see a series' first step from
# absent to 1, so the alert on disabled endpoints would miss the first one of each process.
for _reason in ("gone", "failing"):
    WEBHOOK_ENDPOINTS_DISABLED.labels(reason=_reason)
PAYMENTS = Counter(
    "app_payments_total",
    "Payments reaching a status, by provider (none before an intent exists) and status",
    ["provider", "status"],
)
PAYMENT_FALLBACKS = Counter(
    "app_payment_fallbacks_total",
    "Payments that continued with the next provider because one was unavailable",
    ["from_provider", "to_provider"],
)
PAYMENT_UNKNOWN_OUTCOMES = Counter(
    "app_payment_unknown_outcomes_total",
    "Provider calls sent without an answer (timeout, dropped, 5xx): left pending, reconciled",
    ["provider"],
)
PAYMENT_PROVIDER_SECONDS = Histogram(
    "app_payment_provider_seconds",
    "Time a call to a payment provider took, by operation (intent, charge, refund, lookup)",
    ["provider", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Likewise the payment series alerts and dashboards read (one provider chain: Stripe, PayPal).
PAYMENT_FALLBACKS.labels(from_provider="stripe", to_provider="paypal")
for _provider in ("stripe", "paypal"):
    PAYMENT_UNKNOWN_OUTCOMES.labels(provider=_provider)
