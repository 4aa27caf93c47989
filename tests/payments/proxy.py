"""An HTTP proxy on a loopback port that records every request it forwards, and can forward
a request and then drop the answer (the provider acted; we never hear of it)."""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Forwarded:
    method: str
    path: str
    headers: dict[str, str]
    dropped: bool


@dataclass
class RecordingProxy:
    upstream_port: int
    seen: list[Forwarded] = field(default_factory=list)
    drop: tuple[str, ...] = ()  # path fragments whose answers are dropped after forwarding

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                dropped = any(fragment in self.path for fragment in proxy.drop)
                headers = dict(self.headers.items())
                proxy.seen.append(Forwarded(self.command, self.path, headers, dropped))
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=10)
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                if dropped:  # the upstream acted; the caller never hears of it
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def posts(self, fragment: str) -> list[Forwarded]:
        return [f for f in self.seen if f.method == "POST" and fragment in f.path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
