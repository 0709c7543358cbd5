#!/usr/bin/env bash
# The distributed topology of docker-compose.yml without Docker: against a local
# PostgreSQL and Redis, start
#   1. migrate  scripts/prestart.sh (wait for the database, alembic upgrade head)
#   2. api      uvicorn with $API_WORKERS (2) worker processes on $HOST:$API_PORT
#   3. worker   a Celery worker (prefork, $WORKER_CONCURRENCY processes), metrics on
#               $WORKER_METRICS_PORT
#   4. beat     the Celery beat schedule (the sweeper)
#   5. maintenance  a thread-pool worker for the maintenance queue (the sweeper,
#               webhooks, e-mail): recovery never waits behind queued runs
# and stay in the foreground. SIGTERM/SIGINT (Ctrl-C) stops them gracefully: the API
# drains in-flight requests and closes WebSockets with 1012, the worker finishes its
# running jobs (Celery warm shutdown). If any process exits, the others are stopped.
#
#   DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/backtest \
#   REDIS_URL=redis://127.0.0.1:6379/0 JWT_SECRET=... scripts/run-distributed.sh
#
# Defaults: the database "backtest" on 127.0.0.1:5432 (create it first:
# `createdb -h 127.0.0.1 -U postgres backtest`), Redis DB 0, a random JWT secret
# shared by all processes of this run. RUN_LOG_DIR=dir writes each process's log to
# dir/<name>.log instead of this terminal. RUN_DIR (default var/distributed) holds
# the metrics directories and beat's schedule; it is emptied at start.
# API_APP (default app.main:create_app, an ASGI app factory) and CELERY_APP (default
# celery_worker) name the entry points to serve, e.g. a wrapper that adds plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
PYTHON="${PYTHON:-python}"
API_APP="${API_APP:-app.main:create_app}"
CELERY_APP="${CELERY_APP:-celery_worker}"

export DATABASE_URL="${DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/backtest}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export ENVIRONMENT="${ENVIRONMENT:-production}"
export AUTO_MIGRATE=false
if [ -z "${JWT_SECRET:-}" ]; then
  JWT_SECRET="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')"
  export JWT_SECRET
fi
HOST="${HOST:-127.0.0.1}"
API_PORT="${API_PORT:-8000}"
API_WORKERS="${API_WORKERS:-2}"
WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"
export WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-9808}"
RUN_DIR="${RUN_DIR:-var/distributed}"
LOG_LEVEL="${LOG_LEVEL:-INFO}"

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/metrics-api" "$RUN_DIR/metrics-worker"
[ -n "${RUN_LOG_DIR:-}" ] && mkdir -p "$RUN_LOG_DIR"

declare -A PIDS=()

start() {  # start NAME METRICS_DIR COMMAND...
  local name="$1" metrics="$2"
  shift 2
  if [ -n "${RUN_LOG_DIR:-}" ]; then
    PROMETHEUS_MULTIPROC_DIR="$metrics" "$@" >>"$RUN_LOG_DIR/$name.log" 2>&1 &
  else
    PROMETHEUS_MULTIPROC_DIR="$metrics" "$@" &
  fi
  PIDS[$name]=$!
  echo "run-distributed: started $name (pid ${PIDS[$name]})" >&2
}

stopping=0
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' TERM INT  # a second signal must not cut the graceful stop short
  echo "run-distributed: stopping (SIGTERM to ${!PIDS[*]})" >&2
  for name in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$name]}" 2>/dev/null || true
  done
  for name in "${!PIDS[@]}"; do
    wait "${PIDS[$name]}" 2>/dev/null || true
  done
  echo "run-distributed: stopped" >&2
}
trap 'stop_all; exit 0' TERM INT

echo "run-distributed: migrating $(echo "$DATABASE_URL" | sed -E 's#//([^:@/]*):[^@]*@#//\1:***@#')" >&2
PYTHON="$PYTHON" scripts/prestart.sh

start api "$RUN_DIR/metrics-api" "$PYTHON" -m app.ops.serve "$API_APP" --factory \
  --host "$HOST" --port "$API_PORT" --workers "$API_WORKERS" \
  --timeout-graceful-shutdown 30
start worker "$RUN_DIR/metrics-worker" celery -A "$CELERY_APP" worker \
  --queues jobs --concurrency "$WORKER_CONCURRENCY" --loglevel "$LOG_LEVEL" \
  --hostname "worker-$$@%h"
# Webhook deliveries and e-mails on their own queue and worker, so a deep backlog of
# jobs never delays a notification.
start maintenance "$RUN_DIR/metrics-worker" celery -A "$CELERY_APP" worker \
  --queues maintenance --pool threads --concurrency 4 --loglevel "$LOG_LEVEL" \
  --hostname "maintenance-$$@%h"
start beat "$RUN_DIR/metrics-worker" celery -A "$CELERY_APP" beat \
  --loglevel "$LOG_LEVEL" --schedule "$RUN_DIR/celerybeat-schedule"

cat >&2 <<MSG

  Backtest service (distributed mode, $API_WORKERS API processes)
    API      http://$HOST:$API_PORT/  (/docs, /health, /ready, /metrics)
    worker   metrics on http://$HOST:$WORKER_METRICS_PORT/metrics
    stop     Ctrl-C or SIGTERM to pid $$

MSG
# The first process to exit (a crash) takes the others down with it.
set +e
wait -n "${PIDS[@]}"
code=$?
set -e
echo "run-distributed: a process exited (code $code)" >&2
stop_all
exit "$code"
