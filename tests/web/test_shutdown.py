"""A deploy's SIGTERM: not ready at once, serving through the drain, in-flight requests finish."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DRAIN_SECONDS = 2.0


def _status(url: str, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_sigterm_drains_then_finishes_what_it_accepted(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RABBITMQ_URL")},
        "DATABASE_URL": sqlite_url,
        "INSTANCE_PATH": str(tmp_path),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "DRAIN_FLAG_FILE": str(tmp_path / "draining"),
        "SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "PASSWORD_HASH_ITERATIONS": "1500000",  # a sign-in that takes a good while: in flight
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while _ready(url) != 200:
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
            time.sleep(0.2)
        slow: list[int] = []
        body = json.dumps({"email": "nobody@example.com", "password": "x" * 12}).encode()
        worker = threading.Thread(
            target=lambda: slow.append(_status(url + "/api/v1/auth/login", body))
        )
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        assert _connection_header(kept) == "keep-alive"  # a client's keep-alive connection
        worker.start()
        time.sleep(0.3)  # the sign-in is being hashed
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert _ready(url) == 503  # out of the load balancer at once
        # Its next answer closes it, so the client reconnects elsewhere instead of sending a
        # request on a connection the stopping worker is about to close.
        assert _connection_header(kept) == "close"
        served = [_status(url + "/healthz") for _ in range(5)]  # still serving meanwhile
        assert served == [200] * 5
        worker.join(timeout=20)
        assert slow == [401]  # the request in flight was answered, not dropped
        assert proc.wait(timeout=DRAIN_SECONDS + 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _connection_header(conn: http.client.HTTPConnection) -> str:
    """GET /healthz on a kept connection; the answer's Connection header."""
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    return (response.getheader("Connection") or "").lower()


def _ready(url: str) -> int:
    try:
        return _status(url + "/readyz")
    except OSError:
        return 0
