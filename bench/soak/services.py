"""The soak's own PostgreSQL, Redis and gunicorn, on spare loopback ports.

The soak restarts, pauses and stops these, so it must never use the machine's shared
services: each run makes a throwaway PostgreSQL cluster (initdb under a temporary
directory) and a Redis with AOF on (as production should run it, so a restart keeps
sessions and tokens), and removes both at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check()` until it is true; return when (time.time()) it first was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class Postgres:
    """A throwaway cluster; run as the `postgres` account when we are root (initdb refuses root)."""

    def __init__(self, workdir: Path) -> None:
        self.bin = _postgres_bin()
        self.data = workdir / "pgdata"
        self.log = workdir / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/soak"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            uid = pwd.getpwnam(self._user).pw_uid
            os.chown(workdir, uid, -1)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._user:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        options += " -c fsync=off -c max_connections=100"
        (self.data / "soak.opts").write_text(options)
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "soak")

    def start(self) -> None:
        options = (self.data / "soak.opts").read_text()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def ready(self) -> bool:
        probe = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False)
        return probe.returncode == 0


class Redis:
    """A redis-server with an append-only file, so a restart keeps sessions and tokens."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
             str(self.dir), "--appendonly", "yes", "--save", "", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self.ready, 10, "redis-server")

    def stop(self) -> None:
        """SHUTDOWN as an operator's restart does: the AOF is flushed first."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def resume_quietly(self) -> None:
        """SIGCONT if it may be paused (cleaning up after an interrupted phase)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class Web:
    """`gunicorn -c gunicorn.conf.py "app:create_app()"`, as the Procfile's web process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=out,
                start_new_session=True,  # its own process group: kill() reaches the workers too
            )
        wait_until(lambda: self.status("/readyz") == 200, 60, "gunicorn /readyz")

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        if self.process is None:
            return None
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Stop the master and its workers at once (cleanup, not a deploy)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker (the master's children), in MB."""
        if self.process is None or self.process.poll() is not None:
            return []
        children = psutil.Process(self.process.pid).children()
        return [c.memory_info().rss / 1e6 for c in children]
