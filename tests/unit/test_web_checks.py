"""The web app's checks (scripts/check_web.sh): npm ci, tsc over the // @ts-check
modules, function lengths and the Node unit tests of the pure modules. Part of the
README test command; fails (does not skip) when node or npm is missing, since the
checks are then silently gone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_web.sh"


def test_web_checks_pass() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not installed: the web app's checks cannot run "
            "(apt-get install nodejs npm)"
        )
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (
        f"scripts/check_web.sh failed ({result.returncode}):\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    )
