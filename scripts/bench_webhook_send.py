"""Cost of one webhook attempt's HTTP side: Standard Webhooks signing, the SSRF
guard (resolve + check + peer check) and the POST to a local receiver, through the
same client the ``webhooks.deliver`` task uses. Prints per-attempt milliseconds.

    python scripts/bench_webhook_send.py [attempts]
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.webhooks import delivery
from app.webhooks.client import guarded_client


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def main(attempts: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    body = '{"type":"backtest.completed","data":{"metrics":{"total_return":0.42}}}'
    attempt = delivery.Attempt(uuid.uuid4(), url, delivery.new_secret(), "msg_1", body)
    timings = []
    for _ in range(attempts):
        started = time.perf_counter()
        # A fresh client per attempt, as the task does (no connection reuse).
        with guarded_client(allowed_hosts=["127.0.0.1"], timeout=10) as client:
            outcome = delivery.send(client, attempt)
        timings.append((time.perf_counter() - started) * 1000)
        assert outcome.ok, outcome
    server.shutdown()
    timings.sort()
    print(
        f"{attempts} attempts: median {statistics.median(timings):.2f} ms, "
        f"p95 {timings[int(len(timings) * 0.95) - 1]:.2f} ms, max {timings[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
