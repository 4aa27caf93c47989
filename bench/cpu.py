"""CPU time the serving side spends per request: a server's processes, the PostgreSQL
backends of the bench database and the Redis server, read from /proc (Linux).

Requests per second on a shared machine swing with whatever else runs on it (the bare
endpoint has measured 1,100 and 3,800 req/s in one run); the CPU seconds a request costs
the processes that serve it swing much less, and a server's share of a dedicated
machine's throughput follows from them. wrk's own CPU is left out: it is the same per
request whatever the URL. The database and Redis parts count every backend of the bench
database and the whole Redis server: run nothing else against them meanwhile (the other
servers of a bench run sit idle while one is loaded).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
Reading = dict[str, dict[int, float]]  # part ("server", "database", "redis") -> pid -> seconds


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process (0 once it has gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0


def group_seconds(pgid: int) -> dict[int, float]:
    """CPU seconds of every process in a process group (a gunicorn arbiter and its workers)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[2]) == pgid:
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return found


class ServingCPU:
    """Reads the CPU seconds spent so far by one server, the database and Redis."""

    def __init__(self, backend_pids: Callable[[], list[int]], redis_pid: int | None) -> None:
        self.backend_pids = backend_pids  # the PostgreSQL backends of the bench database
        self.redis_pid = redis_pid

    @classmethod
    def available(cls) -> bool:
        return Path("/proc/self/stat").exists()

    def read(self, pgid: int) -> Reading:
        """Per process, by part: the server's group, the database backends, Redis."""
        return {
            "server": group_seconds(pgid),
            "database": {pid: process_seconds(pid) for pid in self.backend_pids()},
            "redis": {self.redis_pid: process_seconds(self.redis_pid)} if self.redis_pid else {},
        }

    @staticmethod
    def spent(before: Reading, after: Reading) -> float:
        """CPU seconds between two readings; a process that started in between (a new
        database connection, a restarted worker) counts from nothing."""
        return sum(
            max(0.0, seconds - before.get(part, {}).get(pid, 0.0))
            for part, now in after.items()
            for pid, seconds in now.items()
        )


def redis_pid(url: str | None) -> int | None:
    """The local Redis server's pid (INFO server), if there is one to read."""
    if not url:
        return None
    import redis

    try:
        client: Any = redis.Redis.from_url(url, socket_timeout=2)
        pid = int(client.info("server")["process_id"])
        client.close()
    except (redis.RedisError, KeyError, ValueError):
        return None
    return pid if _stat(pid) else None  # another machine's Redis: nothing to read here
