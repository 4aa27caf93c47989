"""An aiosmtpd server on a loopback port that keeps what it accepted, and can hold mail.

`hold()` makes every DATA wait (so a sender is stuck mid-send, to be killed there)
until `accept()`, which answers the held ones 451 (never accepted) and takes the
rest normally. `received` holds only what was accepted with 250.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import free_port


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[EmailMessage] = []
        self.held = threading.Event()  # a sender is waiting in DATA
        self._holding = False
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._controller.stop()

    def hold(self) -> None:
        self._release.clear()
        self.held.clear()
        self._holding = True

    def accept(self) -> None:
        self._holding = False
        self._release.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._holding:
            self.held.set()
            await asyncio.get_running_loop().run_in_executor(None, self._release.wait, 30)
            return "451 4.3.0 Not accepted, try again later"
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(message)
        return "250 OK"

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(str(m["Message-ID"]) for m in self.received)

    def recipients(self) -> Counter[str]:
        with self._lock:
            return Counter(str(m["To"]) for m in self.received)
