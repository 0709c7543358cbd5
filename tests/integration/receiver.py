"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request and
answers with a programmed sequence of status codes (the last one repeats)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float  # time.monotonic()


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=lambda: [200])
    location: str | None = None  # sent with 3xx answers
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    server: Any = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.requests)} of {count} requests arrived"
                    )
                self.arrived.wait(left)
            return list(self.requests)


def start_receiver(statuses: list[int], location: str | None = None) -> Receiver:
    receiver = Receiver(statuses=list(statuses), location=location)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length).decode()
            with receiver.arrived:
                index = len(receiver.requests)
                receiver.requests.append(
                    Received(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        time.monotonic(),
                    )
                )
                receiver.arrived.notify_all()
            code = receiver.statuses[min(index, len(receiver.statuses) - 1)]
            self.send_response(code)
            if receiver.location and 300 <= code < 400:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver
