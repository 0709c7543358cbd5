"""The layering rules of STYLE.md, enforced (import-linter contracts, pyproject)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_kept() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(linter), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_engine_imports_without_any_framework() -> None:
    code = (
        "import sys, app.engine.backtest, app.data.store, app.engine.synthetic;"
        "bad = {'fastapi','sqlalchemy','celery','redis','structlog','starlette'}"
        " & {m.split('.')[0] for m in sys.modules};"
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
