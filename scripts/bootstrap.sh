#!/usr/bin/env bash
# Create .venv (if missing or stale) and install the project with the given extras.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh dev
# Uses uv (fast); without uv on PATH it installs uv into the venv first. Needs
# Python >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
stamp=".venv/.installed-${extras:-base}"
# Bytecode is compiled at install (--compile-bytecode, and the code below): with
# PYTHONDONTWRITEBYTECODE set (as in the Docker image) nothing writes it at import,
# and every process would compile every module it imports from source first.
bytecode=".venv/.bytecode"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python >= 3.11 is required (found $("$PY" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -f "$bytecode" ]; then
  exit 0
fi
if command -v uv >/dev/null 2>&1; then
  [ -x .venv/bin/python ] || uv venv -q --python "$PY" .venv
  uv pip install -q --compile-bytecode --python .venv/bin/python -e "$spec"
else
  # No uv on PATH: put it in the venv and use it from there (faster than pip;
  # plain pip works too, scripts/check_pip_install.sh proves it in CI).
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip uv
  .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -e "$spec"
fi
# The project's own code (an editable install: uv compiles site-packages only).
.venv/bin/python -m compileall -q -j 0 app alembic celery_worker.py >/dev/null
touch "$stamp" "$bytecode"
