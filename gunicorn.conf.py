"""Gunicorn settings for the `web` process (see Procfile).

Prometheus multiprocess mode: every worker writes samples under
PROMETHEUS_MULTIPROC_DIR and /metrics aggregates them, so a scrape sees all
workers. The directory is emptied at start-up so stale samples never linger.

Draining on SIGTERM (deploys): the master first marks the app as draining, so
/readyz answers 503 at once and a load balancer stops sending new requests,
keeps every worker serving for SHUTDOWN_DRAIN_SECONDS, and only then stops them
gracefully: each finishes the request it is serving (up to graceful_timeout).
Requests that reached the socket during the drain are still served.

Each worker freezes what it has loaded once the app is built (post_worker_init), so
the garbage collector's full passes no longer walk the app's long-lived objects.
"""

import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # noqa: S104 - a server binds all interfaces
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
drain_seconds = float(os.environ.get("SHUTDOWN_DRAIN_SECONDS", "5"))
keepalive = 5
accesslog = None  # the app writes one structured access line per request
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app answers 414 itself past 4096 bytes of query string (app/core/middleware.py), as
# problem JSON under /api; the server's own (HTML) 414 is left for lines past this.
limit_request_line = 8190

_metrics_given = "PROMETHEUS_MULTIPROC_DIR" in os.environ  # shared with workers and bridges
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / f"app-metrics-{os.getpid()}")
)


_drain_flag = os.environ.setdefault(
    "DRAIN_FLAG_FILE", str(Path(tempfile.gettempdir()) / f"app-draining-{os.getpid()}")
)


def on_starting(server):
    """Start from an empty metrics directory (our own; a given one is shared with the worker
    and bridge processes, which may already write there), not draining."""
    if not _metrics_given:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
    Path(_metrics_dir).mkdir(parents=True, exist_ok=True)
    Path(_drain_flag).unlink(missing_ok=True)


def when_ready(server):
    """On SIGTERM: report not ready, keep serving for the drain period, then stop."""
    stop = server.handle_term

    def drain_then_stop():
        Path(_drain_flag).touch()
        server.log.info("SIGTERM: draining for %.1fs (/readyz answers 503)", drain_seconds)
        time.sleep(drain_seconds)
        stop()

    server.handle_term = drain_then_stop


def post_worker_init(worker):
    """Keep the loaded app out of the garbage collector's full passes.

    The app, its modules, SQLAlchemy's mappers and Jinja's compiled templates are some
    150,000 objects that live as long as the worker; every full collection (one every few
    hundred requests) walked them all: about 0.5 ms of CPU per /items request on average.
    Frozen, they are never scanned again; what requests allocate is collected as before.
    """
    gc.collect()
    gc.freeze()


def on_exit(server):
    Path(_drain_flag).unlink(missing_ok=True)


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the aggregate."""
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
