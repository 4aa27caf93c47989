"""A RabbitMQ node of our own on spare loopback ports, under a temporary directory.

Only this node is ever stopped or restarted: the machine's shared broker (its
node name, ports, data and cookie) is never touched. Name, ports, data, logs,
configuration, plugins and Erlang cookie all live under `base`, so a restart
with the same `base` finds the same queues and persistent messages.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not /usr/sbin's wrapper, which su's to the
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"  # shared broker's user and its files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RabbitNode:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.name = f"ledgerly-faults-{uuid.uuid4().hex[:6]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (base / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's (the shared node's)
        (base / "enabled_plugins").write_text("[].\n")  # no management listener to collide

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        b = self.base
        return {
            **os.environ,
            "HOME": str(b),  # the Erlang cookie is ours too
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_PID_FILE": str(b / "rabbit.pid"),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(b / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(b / "plugins-expand"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(b / "feature_flags"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 120.0) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        log = (self.base / "server.out").open("ab")
        self._process = subprocess.Popen(
            [SERVER], env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._ctl("await_startup", "--timeout", str(int(timeout)), timeout=timeout + 10)

    def stop(self) -> None:
        """Stop the node gracefully (what a broker restart or upgrade does)."""
        if self._process is None:
            return
        self._ctl("stop", timeout=120)
        self._process.wait(timeout=60)
        self._process = None

    def kill(self) -> None:
        """Make sure nothing of the node is left running (any error path)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None

    def _ctl(self, *args: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            done = subprocess.run(
                [CTL, "-n", self.name, *args],
                env=self.env(),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.decode()[-500:]}")
            time.sleep(1.0)
