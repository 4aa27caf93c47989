"""/metrics under gunicorn with several workers aggregates every worker's samples."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture
def gunicorn_url(sqlite_url: str, tmp_path: Path) -> str:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "INSTANCE_PATH": str(tmp_path),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "3",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_DRAIN_SECONDS": "0",  # no load balancer to drain from here
        "DRAIN_FLAG_FILE": str(tmp_path / "draining"),
    }
    for name in ("REDIS_URL", "RABBITMQ_URL"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _get(url + "/healthz")
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_metrics_count_requests_from_every_worker(gunicorn_url: str) -> None:
    for _ in range(40):
        _get(gunicorn_url + "/healthz")
    text = _get(gunicorn_url + "/metrics")
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("flask_http_request_duration_seconds_count") and 'route="/healthz"' in ln
    )
    # 40 requests plus the start-up probe(s), whichever workers served them.
    assert float(line.rsplit(" ", 1)[1]) >= 40


def _fetch(url: str, method: str = "GET") -> tuple[int, str, str]:
    """Status, content type and body, for error answers too."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_under_gunicorn_the_app_answers_oversized_queries_and_invented_methods(
    gunicorn_url: str,
) -> None:
    # past the app's 4,096 bytes but within gunicorn's request line: the app's 414
    status, kind, body = _fetch(gunicorn_url + "/api/v1/items?q=" + "x" * 6000)
    assert (status, kind) == (414, "application/problem+json"), body[:200]
    status, kind, _ = _fetch(gunicorn_url + "/items?q=" + "x" * 6000)
    assert status == 414 and kind.startswith("text/html")
    # a made-up method is refused, and counted as OTHER, not as itself
    assert _fetch(gunicorn_url + "/login", method="BREW")[0] == 405
    metrics = _get(gunicorn_url + "/metrics")
    assert 'method="OTHER"' in metrics and 'method="BREW"' not in metrics
