#!/usr/bin/env bash
# Prestart (compose service "migrate", scripts/run-distributed.sh): wait until the
# database answers, then apply the migrations (alembic upgrade head). Idempotent.
# DATABASE_URL comes from the environment / .env like every other setting.
# PRESTART_DB_WAIT_SECONDS bounds the wait (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
"$PYTHON" - <<'PY'
import asyncio
import os
import sys
import time

from app.core.config import get_settings
from app.db.session import create_engine, ping


async def wait(deadline: float) -> None:
    engine = create_engine(get_settings())
    try:
        while True:
            try:
                await ping(engine)
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                if time.monotonic() > deadline:
                    sys.exit(f"prestart: database not reachable: {type(exc).__name__}")
                print("prestart: waiting for the database...", file=sys.stderr)
                await asyncio.sleep(1)
    finally:
        await engine.dispose()


budget = float(os.environ.get("PRESTART_DB_WAIT_SECONDS", "60"))
asyncio.run(wait(time.monotonic() + budget))
print("prestart: database reachable", file=sys.stderr)
PY
"$PYTHON" -m alembic upgrade head
echo "prestart: migrations at head" >&2
