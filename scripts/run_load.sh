#!/usr/bin/env bash
# Load test: a fresh distributed stack (scripts/bench_stack.py: uvicorn with 2 workers,
# Celery worker + beat, own Postgres database, Redis DB 12), locust headless with the
# user mix of tests/load/locustfile.py for SECONDS (default 60), then:
#   * throughput, p50/p95/p99 per endpoint and errors (from locust's CSV);
#   * every accepted submission must reach a terminal state, none lost, none
#     duplicated (rows per status in Postgres vs the task ids locust was given);
# and the stack is stopped (database dropped). Exit 0 only if locust saw no error and
# the jobs check passed.
#
#   scripts/run_load.sh [SECONDS]
#   LOAD_USERS=50 LOAD_SPAWN_RATE=10 LOAD_CHECK_TIMEOUT=180 scripts/run_load.sh 60
#
# Soak: LOAD_RSS_INTERVAL=30 also samples every stack process's RSS (by role:
# api, worker, beat; scripts/sample_rss.py) and fails if one grew more than 10 %
# between the end of the warm-up (LOAD_RSS_WARMUP, default 120 s) and the end:
#   LOAD_USERS=25 LOAD_RSS_INTERVAL=30 scripts/run_load.sh 1800
#
# Needs the dev + bench extras (locust, websocket-client), PostgreSQL on
# 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-60}"
USERS="${LOAD_USERS:-50}"
SPAWN_RATE="${LOAD_SPAWN_RATE:-10}"
CHECK_TIMEOUT="${LOAD_CHECK_TIMEOUT:-180}"
PY="${PYTHON:-.venv/bin/python}"
WORK="$(mktemp -d /tmp/bt_load.XXXXXX)"
STATE="$WORK/stack.json"
ACCEPTED="$WORK/accepted.txt"
: >"$ACCEPTED"

"$PY" scripts/bench_stack.py up --state "$STATE" \
  --max-seconds "$((DURATION + CHECK_TIMEOUT + 600))" >"$WORK/stack.log" 2>&1 &
STACK_PID=$!

stop_stack() {
  if kill -0 "$STACK_PID" 2>/dev/null; then
    kill -TERM "$STACK_PID"
    wait "$STACK_PID" || true
  fi
}
trap stop_stack EXIT

for _ in $(seq 1 900); do # the stack needs ~30-90 s on 2 busy cores
  [[ -s "$STATE" ]] && break
  if ! kill -0 "$STACK_PID" 2>/dev/null; then
    echo "stack failed to start:" >&2
    cat "$WORK/stack.log" >&2
    exit 1
  fi
  sleep 0.2
done
[[ -s "$STATE" ]] || { echo "stack not up after 180 s" >&2; exit 1; }
state() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$STATE" "$1"; }
BASE_URL="$(state base_url)"
echo "stack up at $BASE_URL (logs: $(state log_dir)); locust: $USERS users, ${DURATION}s"

RSS_PID=""
if [[ -n "${LOAD_RSS_INTERVAL:-}" ]]; then
  "$PY" scripts/sample_rss.py --state "$STATE" --out "$WORK/rss.csv" \
    --interval "$LOAD_RSS_INTERVAL" --warmup "${LOAD_RSS_WARMUP:-120}" &
  RSS_PID=$!
fi

LOCUST_RC=0
LOAD_USERNAME="$(state username)" LOAD_PASSWORD="$(state password)" \
  LOAD_ACCEPTED_FILE="$ACCEPTED" \
  "$PY" -m locust -f tests/load/locustfile.py --headless --only-summary \
  --host "$BASE_URL" -u "$USERS" -r "$SPAWN_RATE" -t "${DURATION}s" \
  --stop-timeout 60 --json-file "$WORK/locust" --loglevel WARNING \
  >"$WORK/locust.log" 2>&1 || LOCUST_RC=$?

"$PY" - "$WORK/locust.json" "$DURATION" <<'PY'
# locust's final JSON (written after the stop-timeout drain, unlike its CSV):
# response_times maps rounded milliseconds to counts.
import json
import sys


def percentile(times: dict[str, int], q: float) -> float:
    total, seen = sum(times.values()), 0
    for ms, count in sorted((float(k), v) for k, v in times.items()):
        seen += count
        if seen >= q / 100 * total:
            return ms
    return float("nan")


entries = json.load(open(sys.argv[1]))
seconds = float(sys.argv[2])
print(f"\n## Load test: locust, {seconds:.0f} s")
head = ("endpoint", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms")
print("{:<34}{:>10}{:>10}{:>9}{:>9}{:>9}{:>9}".format(*head))
everything: dict[str, int] = {}
for e in entries:
    for ms, count in e["response_times"].items():
        everything[ms] = everything.get(ms, 0) + count
rows = [(f"{e['method']} {e['name']}", e) for e in entries]
rows.append(("Aggregated", {"num_requests": sum(e["num_requests"] for e in entries),
             "num_failures": sum(e["num_failures"] for e in entries),
             "response_times": everything}))
for name, e in rows:
    t = e["response_times"]
    print("{:<34}{:>10}{:>10}{:>9.1f}{:>9.0f}{:>9.0f}{:>9.0f}".format(
        name[:33], e["num_requests"], e["num_failures"], e["num_requests"] / seconds,
        percentile(t, 50), percentile(t, 95), percentile(t, 99)))
print(f"TOTAL failures: {rows[-1][1]['num_failures']}")
PY
grep -A 12 "Error report" "$WORK/locust.log" || true

RSS_RC=0
if [[ -n "$RSS_PID" ]]; then
  kill -TERM "$RSS_PID"
  wait "$RSS_PID" || RSS_RC=$?
  echo "(RSS samples: $WORK/rss.csv)"
fi

echo
CHECK_RC=0
"$PY" scripts/bench_stack.py check --state "$STATE" --accepted "$ACCEPTED" \
  --timeout "$CHECK_TIMEOUT" || CHECK_RC=$?

echo "locust exit $LOCUST_RC (log: $WORK/locust.log), jobs check exit $CHECK_RC, memory check exit $RSS_RC"
[[ "$LOCUST_RC" == 0 && "$CHECK_RC" == 0 && "$RSS_RC" == 0 ]]
