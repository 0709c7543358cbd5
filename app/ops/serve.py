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


# uvicorn's supervisor (``--workers`` > 1) kills a worker process that does not
# answer its health ping within ``--timeout-worker-healthcheck`` (uvicorn's default:
# 5 s), dropping every connection that process holds. Under a burst of submissions
# on 2 busy cores a healthy process was seen missing that 5 s bound (six restarts in
# one 400-job burst, clients saw dropped connections). A hung process is still
# replaced, after this longer bound; a launcher's own value wins.
WORKER_HEALTHCHECK_SECONDS = 30


def uvicorn_arguments(argv: list[str], settings: Settings) -> list[str]:
    """The launcher's arguments plus this service's: the health-check bound unless
    given, and the proxy arguments last (click keeps the last value: they win)."""
    arguments = list(argv)
    if not any(a.startswith("--timeout-worker-healthcheck") for a in arguments):
        arguments += ["--timeout-worker-healthcheck", str(WORKER_HEALTHCHECK_SECONDS)]
    return [*arguments, *proxy_arguments(settings)]


def main(argv: list[str] | None = None) -> None:
    arguments = uvicorn_arguments(
        list(sys.argv[1:] if argv is None else argv), get_settings()
    )
    uvicorn.main.main(args=arguments, prog_name="uvicorn")  # parses, runs, exits


if __name__ == "__main__":
    main()
