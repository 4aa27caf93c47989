"""A loopback TCP proxy that a test cuts, pauses and restores, to fake an outage.

Tests point the app at the proxy instead of the shared PostgreSQL or Redis and
never stop the real service. `cut()` closes every connection and the listening
socket (new connections are refused, like a stopped server); `pause()` keeps
connections open but forwards nothing (a hung server); `restore()` undoes both.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

from tests.conftest import free_port


class FaultProxy:
    """Forwards 127.0.0.1:<port> to an upstream service until told otherwise."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._flowing = threading.Event()
        self._flowing.set()
        self._cut = False
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @classmethod
    def for_url(cls, url: str) -> FaultProxy:
        """A proxy in front of the service a URL names (redis://..., postgresql://...)."""
        return cls(urlsplit(url).port or 0, urlsplit(url).hostname or "127.0.0.1")

    def url(self, url: str) -> str:
        """The same URL, through this proxy."""
        parts = urlsplit(url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc))

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._cut = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._close_connections()

    def pause(self) -> None:
        """Accept and read, but forward nothing: callers wait until their timeouts."""
        self._flowing.clear()

    def restore(self) -> None:
        """Serve again; connections that were paused are closed (their requests are gone)."""
        if not self._flowing.is_set():
            self._close_connections()
            self._flowing.set()
        self._cut = False
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self._flowing.set()
        self.cut()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- internals ---------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut or stopped
            if self._cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                if self._cut:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            self._forget(sock)
