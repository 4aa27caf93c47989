"""A relay or bridge process that SIGKILLs itself at one chosen point, for the fault tests.

    python -m tests.faults.crash relay    # dies after the broker confirmed a publish,
                                          # before the outbox row is marked published
    python -m tests.faults.crash bridge   # dies after RQ accepted the job, before the ack

The app is built from the environment, as `flask bridge` builds it. The patched
call is the real one followed by SIGKILL, so nothing after it runs (no commit,
no ack, no cleanup): exactly what a kill -9 at that instant leaves behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from app import create_app
from app.jobs.bridge import Bridge
from app.jobs.relay import Relay


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_relay() -> None:
    publish = Relay._publish

    def publish_then_die(self: Relay, *args: Any) -> None:
        publish(self, *args)  # returns once the broker confirmed it
        _die()

    Relay._publish = publish_then_die  # type: ignore[method-assign]
    Relay(create_app()).publish_batch()


def crash_bridge() -> None:
    def ack_never(self: BlockingChannel, *args: Any, **kwargs: Any) -> None:
        _die()

    BlockingChannel.basic_ack = ack_never  # type: ignore[method-assign]
    Bridge(create_app()).run(threading.Event())


if __name__ == "__main__":
    {"relay": crash_relay, "bridge": crash_bridge}[sys.argv[1]]()
    sys.exit("the process was meant to be killed, and was not")
