"""Gunicorn settings for the `web` process (see Procfile).

Prometheus multiprocess mode: every worker writes samples under
PROMETHEUS_MULTIPROC_DIR and /metrics aggregates them, so a scrape sees all
workers. The directory is emptied at start-up so stale samples never linger.
"""

import os
import shutil
import tempfile
from pathlib import Path

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # noqa: S104 - a server binds all interfaces
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
keepalive = 5
accesslog = None  # the app writes one structured access line per request
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app answers 414 itself past 4096 bytes of query string (app/core/middleware.py), as
# problem JSON under /api; the server's own (HTML) 414 is left for lines past this.
limit_request_line = 8190

_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / f"app-metrics-{os.getpid()}")
)


def on_starting(server):
    """Start from an empty metrics directory."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    Path(_metrics_dir).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the aggregate."""
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
