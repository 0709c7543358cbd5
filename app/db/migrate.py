"""Schema migrations from Python: ``upgrade_to_head`` for the run command and the CLI,
``is_at_head`` for the readiness check.

``alembic upgrade head`` on the command line does the same as ``upgrade_to_head``; both
read the URL from Settings unless one is given.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import REPO_ROOT, get_settings
from app.db.session import ensure_sqlite_parent_dir, is_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (and Mako, which it pulls in) is imported inside the functions that use it:
# the API process of distributed mode imports this module for the readiness check and
# the embedded mode's startup, and never migrates (scripts/prestart.sh does), so it
# should not pay ~0.3 s of start-up and a few MB for it (issue 18).

ALEMBIC_INI = REPO_ROOT / "alembic.ini"
ALEMBIC_DIR = REPO_ROOT / "alembic"
VERSION_TABLE = "alembic_version"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config whose ``url`` attribute env.py prefers over Settings."""
    from alembic.config import Config  # noqa: PLC0415 - see the module's note

    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["url"] = url or get_settings().resolved_database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head(url: str | None = None) -> None:
    """Create or migrate the schema at ``url`` (default: Settings' database).

    Alembic drives the async driver with ``asyncio.run``; running it in a worker thread
    makes this safe to call from sync code and from inside a running event loop (where
    it blocks that loop until done: call it at startup, before serving).
    """
    url = url or get_settings().resolved_database_url
    if is_sqlite(url):
        ensure_sqlite_parent_dir(url)
    from alembic import command  # noqa: PLC0415 - see the module's note

    config = alembic_config(url)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as pool:
        pool.submit(command.upgrade, config, "head").result()


def downgrade_to_base(url: str | None = None) -> None:
    from alembic import command  # noqa: PLC0415 - see the module's note

    config = alembic_config(url)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as pool:
        pool.submit(command.downgrade, config, "base").result()


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - see the module's note

    script = ScriptDirectory(str(ALEMBIC_DIR))
    return frozenset(script.get_heads())


def _current_revisions(connection: Connection) -> frozenset[str]:
    # Read the version table directly: MigrationContext.configure() logs at INFO on
    # every call, too noisy for a readiness probe polled every few seconds.
    if not inspect(connection).has_table(VERSION_TABLE):
        return frozenset()
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return frozenset(str(row[0]) for row in rows)


async def current_revisions(engine: AsyncEngine) -> frozenset[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revisions)


async def is_at_head(engine: AsyncEngine) -> bool:
    """True when the database's revision(s) equal the code's Alembic head(s)."""
    return await current_revisions(engine) == head_revisions()
