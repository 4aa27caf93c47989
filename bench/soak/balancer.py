"""A small TCP load balancer that follows /readyz, as the deploy sequence in the README expects.

The soak's SIGTERM phase is a deploy: a new web process starts, the old one gets SIGTERM
and must drop nothing. That only works behind something that stops sending new
connections to a backend whose /readyz says "draining", so the soak puts this in front
of gunicorn in every phase. A backend that answers /readyz 503 because PostgreSQL or
Redis is down stays in rotation: taking every instance out over a shared dependency
would turn a partial outage into a total one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import urllib.error
import urllib.request

CHECK_INTERVAL = 0.5  # seconds; shorter than SHUTDOWN_DRAIN_SECONDS, as the README asks


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


def _draining(port: int, was: bool) -> bool:
    """True when the backend says it is draining or refuses connections (it has exited).

    A slow answer keeps the previous verdict: under load /readyz waits its turn behind
    busy workers, and that is no reason to stop sending them work.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
            return False
    except urllib.error.HTTPError as exc:
        try:
            return bool(json.loads(exc.read()).get("status") == "draining")
        except ValueError:
            return False
    except (ConnectionRefusedError, urllib.error.URLError) as exc:
        refused = isinstance(exc, ConnectionRefusedError) or isinstance(
            getattr(exc, "reason", None), ConnectionRefusedError
        )
        return True if refused else was
    except OSError:
        return was


class Balancer:
    """Accepts on `port` and forwards each connection to a backend that is not draining."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._backends: list[int] = []
        self._usable: list[int] = []
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop = threading.Event()
        self._checker = threading.Thread(target=self._check_forever, daemon=True)

    def set_backends(self, ports: list[int]) -> None:
        self._backends = list(ports)
        self._usable = [p for p in ports if not _draining(p, was=False)]

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=5)
        self._checker.start()

    def stop(self) -> None:
        self._stop.set()
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _serve(self) -> None:
        await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        usable = self._usable
        if not usable:
            writer.close()
            return
        port = usable[next(self._turn) % len(usable)]
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def _check_forever(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL):
            usable = self._usable
            self._usable = [p for p in self._backends if not _draining(p, p not in usable)]
