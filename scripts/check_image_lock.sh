#!/usr/bin/env bash
# Check that a built image holds exactly the locked dependencies: its `pip freeze`
# must equal the pins of requirements-runtime.lock (same names, same versions,
# nothing missing, nothing extra).
#
# Usage: scripts/check_image_lock.sh [IMAGE]      (default backtest-service:latest)
#        scripts/check_image_lock.sh --freeze FILE (compare a saved `pip freeze`;
#                                                   no Docker needed)
# Needs a Docker daemon for the image form: `docker build -t backtest-service .` first.
# Exit status: 0 identical, 1 different (the difference is printed), 2 usage/Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK="${LOCK:-requirements-runtime.lock}"

# name==version lines, names normalised (PEP 503), sorted.
normalise() {
  sed -E -n 's/^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?==([^ ;\\]+).*/\1==\3/p' \
    | awk -F'==' '{ name = tolower($1); gsub(/[-_.]+/, "-", name); print name "==" $2 }' \
    | sort -u
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
normalise < "$LOCK" > "$tmp/lock"

if [ "${1:-}" = "--freeze" ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --freeze FILE" >&2; exit 2; }
  normalise < "$2" > "$tmp/image"
  source_name="$2"
else
  image="${1:-backtest-service:latest}"
  command -v docker >/dev/null 2>&1 || { echo "docker not found" >&2; exit 2; }
  docker run --rm --entrypoint python "$image" -m pip freeze --all \
    | grep -Ev '^(pip|setuptools|wheel)==' | normalise > "$tmp/image" || exit 2
  source_name="$image"
fi

if diff -u --label "$LOCK" --label "$source_name (pip freeze)" "$tmp/lock" "$tmp/image"
then
  echo "OK: $source_name holds exactly the $(wc -l < "$tmp/lock") packages of $LOCK"
else
  echo "MISMATCH between $LOCK and $source_name (lines: - lock only, + image only)" >&2
  exit 1
fi
