"""The one place configuration is read (environment variables and an optional .env).

Every setting is documented in ``.env.example``. Nothing else in the code base reads
``os.environ``.

Run mode is derived, not configured twice: ``DATABASE_URL`` pointing at PostgreSQL and
``REDIS_URL`` set select the distributed mode; with neither set the service runs
embedded (SQLite file, in-process worker, in-memory rate limits and progress).
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "bundled"

_PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev-secret-change-me"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool | None = None  # default: JSON in production, console otherwise

    # --- storage -------------------------------------------------------------
    var_dir: Path = Field(default=REPO_ROOT / "var")
    database_url: str | None = (
        None  # default: sqlite+aiosqlite:///<var_dir>/backtest.db
    )
    # Connection pool per process (PostgreSQL only; SQLite uses SQLAlchemy's default).
    db_pool_size: int = Field(default=5, ge=1, le=100)
    # Extra connections allowed above db_pool_size under burst load (PostgreSQL only).
    db_max_overflow: int = Field(default=10, ge=0, le=100)
    # Log every SQL statement (SQLAlchemy echo); for debugging only.
    db_echo: bool = False
    # How long a SQLite writer waits for the file lock before "database is locked".
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0, le=600_000)
    redis_url: str | None = None  # unset: embedded mode (no Redis)
    # Apply migrations when the API starts. Default: yes in embedded mode; in the
    # distributed mode a one-shot `alembic upgrade head` (compose: migrate) does it.
    auto_migrate: bool | None = None
    datasets_dir: Path | None = None  # imported datasets; default <var_dir>/datasets
    bundled_dataset_dir: Path = BUNDLED_DATA_DIR

    # --- auth ----------------------------------------------------------------
    jwt_secret: str = "dev-secret-change-me"  # noqa: S105 - placeholder, refused
    jwt_expire_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    cors_origins: list[str] = Field(default_factory=list)
    ws_allowed_origins: list[str] = Field(default_factory=list)

    # --- jobs and workers ----------------------------------------------------
    # Celery soft limit (the task fails cleanly) and hard limit (the process is killed).
    task_soft_time_limit_seconds: int = Field(default=600, ge=5, le=3600)
    task_time_limit_seconds: int = Field(default=660, ge=10, le=3660)
    # A job that crashed its worker this many times is failed instead of re-run.
    max_attempts: int = Field(default=3, ge=1, le=10)
    # A running job's heartbeat is refreshed at least this often...
    heartbeat_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    # ...and the sweeper treats it as dead (re-queue or fail) after this long without.
    stale_heartbeat_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Pending rows older than this with no worker on them are re-enqueued.
    pending_requeue_seconds: float = Field(default=60.0, gt=0, le=3600)
    sweep_interval_seconds: float = Field(default=15.0, gt=0, le=3600)
    # Progress messages are throttled to one per interval (plus start and end).
    progress_interval_seconds: float = Field(default=0.2, ge=0, le=10)
    # Embedded mode: threads of the in-process Celery worker (0 = don't start one).
    embedded_worker_concurrency: int = Field(default=2, ge=0, le=32)
    # Fault-injection hook for tests and demos: sleep this long between engine chunks
    # so that a backtest runs long enough to be watched, cancelled or killed. Keep 0.
    engine_chunk_delay_seconds: float = Field(default=0.0, ge=0, le=5)


    @model_validator(mode="after")
    def _hard_limit_above_soft(self) -> Settings:
        if self.task_time_limit_seconds <= self.task_soft_time_limit_seconds:
            raise ValueError(
                "TASK_TIME_LIMIT_SECONDS must exceed TASK_SOFT_TIME_LIMIT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_secret_outside_development(self) -> Settings:
        """Refuse a placeholder/short JWT secret unless environment is development/test.

        In development and test a placeholder (or unset) secret is replaced by a random
        per-process secret: nothing guessable can be shipped by accident, at the price
        that tokens do not survive a restart and are not shared between processes (set
        JWT_SECRET when running several API processes in development).
        """
        if self.environment in ("development", "test"):
            if self.jwt_secret in _PLACEHOLDER_SECRETS:
                self.jwt_secret = secrets.token_urlsafe(48)
            return self
        if self.jwt_secret not in _PLACEHOLDER_SECRETS and len(self.jwt_secret) >= 32:
            return self
        raise ValueError(
            "JWT_SECRET must be set to a random string of at least 32 characters "
            f"when ENVIRONMENT={self.environment} (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`)"
        )

    # --- derived -------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.var_dir / 'backtest.db'}"

    @property
    def resolved_datasets_dir(self) -> Path:
        return self.datasets_dir or (self.var_dir / "datasets")

    @property
    def migrate_on_start(self) -> bool:
        return self.embedded if self.auto_migrate is None else self.auto_migrate

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: in-process worker and progress."""
        return not self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
