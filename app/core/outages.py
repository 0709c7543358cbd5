"""Which failures are outages of a dependency (the database, Redis/the broker), not
bugs: one classifier used by the API edge (503 + ``Retry-After``, or WebSocket close
1013), the job runner (retry the task) and the sweeper (try again next round).
"""

from __future__ import annotations

import kombu.exceptions
import redis.exceptions
from sqlalchemy import exc as sa_exc

from app.core.errors import ServiceUnavailable

# How long clients are asked to wait before retrying during an outage.
OUTAGE_RETRY_AFTER_SECONDS = 5
WS_TRY_AGAIN_LATER = 1013  # RFC 6455 close code: reconnect later
# SQLSTATEs of a server that cannot serve us right now (asyncpg and psycopg errors
# carry ``sqlstate``; SQLAlchemy's wrapped DBAPI errors too): class 08 connection
# exceptions, 57P01-57P03 admin/crash shutdown and "the database system is starting
# up", 53300 too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# Exception types an outage surfaces as; a handler is registered for each, and it
# re-raises what ``unavailable_dependency`` does not recognise (e.g. IntegrityError).
OUTAGE_TYPES: tuple[type[Exception], ...] = (
    sa_exc.SQLAlchemyError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError,  # ConnectionRefusedError and friends (asyncpg connects raw)
    TimeoutError,
)


def unavailable_dependency(exc: BaseException) -> str | None:
    """``"database"``, ``"redis"`` or ``"service"`` (a raw socket error of unknown
    origin) when ``exc`` means that dependency is down (unreachable, restarting, out
    of connections), else None."""
    if _database_down(exc):
        return "database"
    if isinstance(exc, _REDIS_ERRORS):
        return "redis"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "service"
    return None


_REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,  # Celery could not reach the broker
)


def _database_down(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or (exc.orig is not None and _sqlstate_unavailable(exc.orig))
        )
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # pool checkout timed out / connection lost
    if _sqlstate_unavailable(exc):
        return True
    # asyncpg raises socket errors unwrapped when it cannot connect.
    return isinstance(exc, ConnectionError | TimeoutError) and _from_database_driver(
        exc
    )


def _sqlstate_unavailable(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def _from_database_driver(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy", "psycopg", "aiosqlite")):
            return True
        traceback = traceback.tb_next
    return False


_OUTAGE_MESSAGES = {
    "database": "The database is temporarily unavailable; try again shortly.",
    "redis": "The job queue is temporarily unavailable; try again shortly.",
}


def outage_error(dependency: str) -> ServiceUnavailable:
    message = _OUTAGE_MESSAGES.get(
        dependency, "A backing service is temporarily unavailable; try again shortly."
    )
    return ServiceUnavailable(message, retry_after=OUTAGE_RETRY_AFTER_SECONDS)
