#!/usr/bin/env bash
# The test command (README and CI): install, then lint, type-check, layering, tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k simulator
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff";        ruff check . && ruff format --check .
echo "== mypy";        mypy app && mypy --strict clients/python/src
echo "== import-linter"; lint-imports
echo "== pytest";      pytest "$@"
