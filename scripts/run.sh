#!/usr/bin/env bash
# The run command (README): the whole service on this machine, embedded mode.
# SQLite in ./var, a Celery worker inside the API process, the bundled S&P 500 data,
# a demo account. Set DATABASE_URL + REDIS_URL for the distributed mode instead
# (see scripts/run-distributed.sh and docker-compose.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
DEMO_USERNAME="${DEMO_USERNAME:-demo}"
DEMO_PASSWORD="${DEMO_PASSWORD:-demo-password}"
python -m app.cli users create --username "$DEMO_USERNAME" --password "$DEMO_PASSWORD" \
  --tier pro --exist-ok
cat <<MSG

  Backtest service (embedded mode) starting on http://$HOST:$PORT
    web app     http://$HOST:$PORT/
    API docs    http://$HOST:$PORT/docs   (ReDoc: /redoc)
    demo login  username: $DEMO_USERNAME   password: $DEMO_PASSWORD

MSG
exec python -m app.ops.serve app.main:create_app --factory --host "$HOST" --port "$PORT"
