"""Gunicorn settings for the `web` process (see Procfile).

Prometheus multiprocess mode: every worker writes samples under
PROMETHEUS_MULTIPROC_DIR and /metrics aggregates them, so a scrape sees all
workers. The directory is emptied at start-up so stale samples never linger.

Draining on SIGTERM (deploys): the master first marks the app as draining, so
/readyz answers 503 at once and a load balancer stops sending new requests,
keeps every worker serving for SHUTDOWN_DRAIN_SECONDS, and only then stops them
gracefully: each finishes the request it is serving (up to graceful_timeout).
Requests that reached the socket during the drain are still served, and each is
answered with "Connection: close" (pre_request below), so clients and the load
balancer reconnect, to a process that is not leaving, instead of keeping a
connection that is about to close under them.

Worker model: gthread, 2 processes x 4 threads by default (WEB_CONCURRENCY,
GUNICORN_THREADS, GUNICORN_WORKER_CLASS). A sign-in hashes its password
(PBKDF2, 600,000 iterations, about 0.4 s of a core) on a low-priority thread
(app/utils/crypto.py) and hashlib releases the GIL meanwhile, so the other
threads of the same process keep serving pages. With sync workers a page that
lands behind a sign-in waits for the whole hash, and a burst of sign-ins holds
every worker. Threads rather than more processes: each process holds ~115 MB
and its own pools and caches, a thread almost nothing, and pages spend much of
their time waiting on PostgreSQL and Redis. What `make soak` measured of both
models is in the README ("Soak"); on the shared 2-core machine it ran on, the
machine's load decided the latencies more than the model did.

Keep-alive: 75 s, longer than a proxy's idle timeout (nginx keeps upstream
connections 60 s, as do cloud load balancers), so the proxy closes an idle
connection first. If gunicorn closed it, a request sent at that instant
would meet a closed socket.

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
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
drain_seconds = float(os.environ.get("SHUTDOWN_DRAIN_SECONDS", "5"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
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


def pre_request(worker, req):
    """While draining, close each connection after its answer (a stat per request)."""
    if os.path.exists(_drain_flag):  # noqa: PTH110 - the cheapest check, on every request
        req.must_close = True


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
