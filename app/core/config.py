"""The one place configuration is read (environment variables and an optional .env).

Every setting is documented in ``.env.example``. Nothing else in the code base reads
``os.environ``.

Run mode is derived, not configured twice: ``DATABASE_URL`` pointing at PostgreSQL and
``REDIS_URL`` set select the distributed mode; with neither set the service runs
embedded (SQLite file, in-process worker, in-memory rate limits and progress).
"""

from __future__ import annotations

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
    database_url: str | None = None  # default: sqlite+aiosqlite:///<var_dir>/backtest.db
    redis_url: str | None = None  # unset: embedded mode (no Redis)
    datasets_dir: Path | None = None  # imported datasets; default <var_dir>/datasets
    bundled_dataset_dir: Path = BUNDLED_DATA_DIR

    # --- auth ----------------------------------------------------------------
    jwt_secret: str = "dev-secret-change-me"
    jwt_expire_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    cors_origins: list[str] = Field(default_factory=list)
    ws_allowed_origins: list[str] = Field(default_factory=list)

    # --- demo account (embedded run command) ----------------------------------
    demo_username: str = "demo"
    demo_password: str = "demo-password"

    @model_validator(mode="after")
    def _refuse_weak_secret_outside_development(self) -> Settings:
        if self.environment == "production" and (
            self.jwt_secret in _PLACEHOLDER_SECRETS or len(self.jwt_secret) < 32
        ):
            raise ValueError(
                "JWT_SECRET must be set to a random string of at least 32 characters "
                "in production (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)"
            )
        return self

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
    def embedded(self) -> bool:
        """True when no Redis is configured: in-process worker and progress."""
        return not self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
