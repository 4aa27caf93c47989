"""bench/cpu.py: the CPU time a server's processes spend, read from /proc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cpu import ServingCPU, group_seconds, process_seconds, redis_pid

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# Waits for a line, burns 0.4 s of CPU, says so, and waits again (alive when read).
BURNER = """
import sys, time
sys.stdin.readline()
end = time.process_time() + 0.4
while time.process_time() < end:
    pass
print("done", flush=True)
sys.stdin.readline()
"""


def test_a_process_groups_cpu_time_is_read_and_a_gone_process_reads_zero() -> None:
    burner = subprocess.Popen(  # a group of its own, as bench/tables.py starts gunicorn
        [sys.executable, "-c", BURNER],
        start_new_session=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert burner.stdin is not None and burner.stdout is not None
    cpu = ServingCPU(list, None)  # no database backends, no Redis
    before = cpu.read(burner.pid)
    assert list(before["server"]) == [burner.pid] == list(group_seconds(burner.pid))
    burner.stdin.write("go\n")
    burner.stdin.flush()
    assert burner.stdout.readline().strip() == "done"
    assert 0.3 <= ServingCPU.spent(before, cpu.read(burner.pid)) < 5
    burner.stdin.close()
    burner.wait(timeout=10)
    assert process_seconds(burner.pid) == 0.0  # gone: nothing to read, and no error


def test_spent_counts_processes_born_between_readings_from_nothing() -> None:
    before = {"server": {1: 2.0}, "database": {10: 1.0}, "redis": {}}
    after = {"server": {1: 2.5, 2: 0.25}, "database": {10: 1.5, 11: 0.5}, "redis": {}}
    assert ServingCPU.spent(before, after) == pytest.approx(1.75)


def test_no_redis_url_or_no_server_means_no_redis_pid() -> None:
    assert redis_pid(None) is None
    assert redis_pid("redis://127.0.0.1:1/0") is None  # nothing listens there
