#!/usr/bin/env bash
# The run command (README): the whole service on this machine, embedded mode.
# SQLite in ./var, a Celery worker inside the API process, the bundled S&P 500 data,
# a demo account. Set DATABASE_URL + REDIS_URL for the distributed mode instead
# (see scripts/run-distributed.sh and docker-compose.yml).
#
# Variables:
#   HOST           interface to listen on (default 127.0.0.1; 0.0.0.0 for all)
#   PORT           port to listen on (default 8000)
#   DEMO_USERNAME  demo account created (or kept) at start (default demo)
#   DEMO_PASSWORD  its password (default demo-password)
# The URLs and the demo login are printed once GET /ready answers, i.e. when the
# server really accepts requests and runs them at once (migrations, data loaded, the
# in-process worker warmed up), not before. The very first start also compiles the
# engine's kernels into numba's cache (about 40 s on a quiet 2-core machine); later
# starts load them from the cache in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
DEMO_USERNAME="${DEMO_USERNAME:-demo}"
DEMO_PASSWORD="${DEMO_PASSWORD:-demo-password}"
# The demo account (its migrations' INFO lines are not news to the user: WARNING).
LOG_LEVEL=WARNING python -m app.cli users create --username "$DEMO_USERNAME" \
  --password "$DEMO_PASSWORD" --tier pro --exist-ok
# Print the banner once /ready answers: a background watcher that outlives the exec
# below ($$ stays the server's pid, which also gets Ctrl-C directly).
(
  url="http://$HOST:$PORT"
  probe="$url"
  [ "$HOST" = "0.0.0.0" ] && probe="http://127.0.0.1:$PORT"
  SECONDS=0  # from the server's launch, not from the script's (the install before it)
  deadline=600
  told=0
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 $$ 2>/dev/null || exit 0
    if python -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)' \
      "$probe/ready" 2>/dev/null; then
      cat <<MSG

  Backtest service (embedded mode) ready on $url
    web app     $url/
    API docs    $url/docs   (ReDoc: /redoc)
    demo login  username: $DEMO_USERNAME   password: $DEMO_PASSWORD

MSG
      exit 0
    fi
    if [ "$told" = 0 ] && [ "$SECONDS" -ge 15 ]; then
      told=1
      echo "run.sh: warming up the engine (the first start compiles its kernels, about a minute)..." >&2
    fi
    sleep 0.2
  done
  echo "run.sh: $probe/ready did not answer within 10 minutes (see the log above)" >&2
) &
exec python -m app.ops.serve app.main:create_app --factory --host "$HOST" --port "$PORT"
