#!/usr/bin/env bash
# Install the project with plain pip (no uv, current pip) into a fresh virtualenv,
# then import app.main and run the CLI from outside the checkout, so the installed
# package (code + package data) is what runs. CI runs this (.ci/run): a dependency
# set that plain pip cannot resolve or build fails here, not on a user's machine.
#
# Usage: scripts/check_pip_install.sh [pip install target, default "."]
# pip's wheel cache (PIP_CACHE_DIR, default ~/.cache/pip) keeps repeat runs quick.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
target="${1:-.}"
PY="${PYTHON:-python3}"
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT

start=$SECONDS
"$PY" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip --version
"$venv/bin/python" -m pip install -q "$target"
echo "installed $target with plain pip in $((SECONDS - start)) s"
cd "$(dirname "$venv")"  # not the checkout: import the installed package
"$venv/bin/python" - "$repo" <<'PY'
import sys
from pathlib import Path

import app.main

where = Path(app.main.__file__).resolve()
assert Path(sys.argv[1]) not in where.parents, f"imported from the checkout: {where}"
print(f"import app.main: ok ({where.parent})")
PY
"$venv/bin/python" -m app.cli --help >/dev/null
echo "python -m app.cli --help: ok"
