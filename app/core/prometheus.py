"""Prometheus request metrics and the /metrics endpoint (the app's own counters live in
app/core/metrics.py).

Under gunicorn (PROMETHEUS_MULTIPROC_DIR set) every worker writes its samples
to that directory and /metrics aggregates them, so a scrape sees all workers.

No label takes a value a client can invent: requests are grouped by the route
template they matched (`route="/items/<int:item_id>"`, never the path a client
typed; anything unrouted is `route="unmatched"`), and a request method outside
KNOWN_METHODS reaches the app (and its `method` label) as OTHER, which no route
accepts (405). Otherwise each made-up path or method would add series to every
scrape, for good.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Iterable
from timeit import default_timer
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, Request, Response, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
UNMATCHED_ROUTE = "unmatched"  # 404s, and 405s (Werkzeug matches no rule for those)
UNCOUNTED_PATHS = re.compile("^/static/")
SCRAPE_ENDPOINT = "prometheus_metrics"  # the exporter's /metrics view
_STARTED = "app.metrics_started"  # WSGI environ key: when the request reached the app


def route(req: Request) -> str:
    """The `route` label: the template of the rule a request matched, never its path."""
    rule = req.url_rule
    return rule.rule if rule is not None else UNMATCHED_ROUTE


class KnownMethods:
    """WSGI middleware: any method outside KNOWN_METHODS becomes OTHER before Flask sees it."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in KNOWN_METHODS:
            environ["REQUEST_METHOD"] = OTHER_METHOD
        return self._app(environ, start_response)


class _ProcessRegistry:
    """Exposes the process-wide default registry inside a per-app registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class Collector(Protocol):
    """Metrics read at scrape time (the outbox backlog, queue depths)."""

    def collect(self) -> Iterable[Metric]: ...


class _SharedDirMetrics(GunicornInternalPrometheusMetrics):
    """Multiprocess metrics (every gunicorn worker, RQ worker and bridge writing to one
    directory) plus collectors read at scrape time, which the exporter's own per-scrape
    registry would leave out."""

    def __init__(self, app: Flask, **options: Any) -> None:
        self.scrape_collectors: list[Collector] = []
        super().__init__(app, **options)

    def generate_metrics(self, accept_header: Any = None, names: Any = None) -> Any:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in self.scrape_collectors:
            registry.register(collector)
        chosen = registry.restricted_registry(names) if names else registry
        generate, content_type = choose_encoder(accept_header)
        return generate(chosen), content_type


def add_scrape_collector(app: Flask, collector: Collector) -> None:
    """Have /metrics read `collector` at every scrape, in either mode."""
    metrics = app.extensions.get("metrics")
    if isinstance(metrics, _SharedDirMetrics):
        metrics.scrape_collectors.append(collector)
    elif metrics is not None:
        metrics.registry.register(collector)


def init_metrics(app: Flask, *, token: str | None = None) -> PrometheusMetrics:
    """Attach request metrics and the /metrics endpoint to this app.

    With `token`, a scrape must send `Authorization: Bearer <token>` (for a
    /metrics reachable from outside); without, the endpoint is open, as it is
    when only the monitoring network can reach it.
    """
    options = {"export_defaults": False}  # the request metrics are count_requests' below
    app.wsgi_app = KnownMethods(app.wsgi_app)  # type: ignore[method-assign]
    metrics: PrometheusMetrics
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics = _SharedDirMetrics(app, path="/metrics", **options)
    else:
        # A registry per app keeps several apps in one process (tests) from colliding.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_ProcessRegistry())
        metrics = PrometheusMetrics(app, path="/metrics", registry=registry, **options)
    app.extensions["metrics"] = metrics
    count_requests(app, metrics.registry)
    if token:
        expected = f"Bearer {token}".encode()

        @app.before_request
        def _metrics_need_the_token() -> Response | None:
            if request.endpoint != SCRAPE_ENDPOINT:
                return None
            supplied = request.headers.get("Authorization", "").encode()
            if hmac.compare_digest(supplied, expected):
                return None
            return Response(
                "A bearer token is required.\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
                mimetype="text/plain",
            )

    return metrics


def count_requests(app: Flask, registry: CollectorRegistry) -> None:
    """Every request's latency by method, route template and status, and its count by
    method and status, under the names and labels prometheus_flask_exporter's defaults
    had (the dashboard and alert rules in ops/ read them). A request that raised counts
    with the 500 the error handlers answer it with (app/edge.py). Static files and
    scrapes served are not counted; one refused (401) is.

    A label set's series are found once per process and kept: the exporter looked them up
    through `labels(**values)` on every request, which checks and sorts the labels under
    a lock (3% of a first render's CPU). Methods and routes are bounded (KnownMethods,
    `route`), and so are the statuses Flask answers with, so the kept series are too.
    """
    labels = ("method", "route", "status")
    duration = Histogram(
        "flask_http_request_duration_seconds",
        "Flask HTTP request duration in seconds",
        labels,
        registry=registry,
    )
    total = Counter(
        "flask_http_request_total", "Total number of HTTP requests", labels[::2], registry=registry
    )
    series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(status: int) -> None:
        started = request.environ.pop(_STARTED, None)
        if started is None:  # counted already, or not at all (static files)
            return
        key = (request.method, route(request), status)
        found = series.get(key)
        if found is None:
            found = series[key] = (duration.labels(*key), total.labels(key[0], status))
        found[0].observe(max(default_timer() - started, 0.0))
        found[1].inc()

    def _started() -> None:
        if not UNCOUNTED_PATHS.match(request.path):
            request.environ[_STARTED] = default_timer()

    # First of the hooks: a request another hook answers (414, 429, 401) counts too.
    app.before_request_funcs.setdefault(None, []).insert(0, _started)

    @app.after_request
    def _finished(response: Response) -> Response:
        if request.endpoint == SCRAPE_ENDPOINT and response.status_code == 200:
            request.environ.pop(_STARTED, None)  # a scrape served: not traffic
        else:
            observe(response.status_code)
        return response
