"""``python -m app.ops.serve <uvicorn arguments>``: uvicorn, believing forwarded
headers only from ``TRUSTED_PROXIES``.

uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default and rewrites the client
address before the app sees it, so anyone on the loopback (or behind a local proxy
that appends headers) could pick the address that per-IP limits key on. This
launcher passes ``--forwarded-allow-ips`` from the same setting the app uses, and
``--no-proxy-headers`` when it is empty (the default): then the TCP peer is the
client. Every launcher (scripts/run.sh, scripts/run-distributed.sh, the Dockerfile)
goes through it.

It also keeps ``rich`` out of the server process: ``import structlog`` imports it
when it is installed (the project needs it for the CLI's tables and progress bars),
only to offer rich tracebacks, which this service's log renderers never use
(tracebacks are rendered by ``format_exc_info`` or as dicts without locals,
:mod:`app.core.logging`). Marking it absent (``sys.modules["rich"] = None``, the
import system's documented "not importable") spares every API process ~40 ms of
start-up and ~5 MB; the log output is the same (issue 18).
"""

from __future__ import annotations

import sys

if "structlog" not in sys.modules:  # first thing: nothing imported structlog yet
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]

import uvicorn

from app.core.config import Settings, get_settings


def proxy_arguments(settings: Settings) -> list[str]:
    if not settings.trusted_proxies:
        return ["--no-proxy-headers"]
    allowed = ",".join(settings.trusted_proxies)
    return ["--proxy-headers", f"--forwarded-allow-ips={allowed}"]


def main(argv: list[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Appended last: click keeps the last value, so these win over any given.
    uvicorn.main.main(  # click: parses and runs, then exits
        args=[*arguments, *proxy_arguments(get_settings())], prog_name="uvicorn"
    )


if __name__ == "__main__":
    main()
