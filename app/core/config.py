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
from typing import Any, Literal

import limits
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "bundled"

_PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev-secret-change-me"}


TierName = Literal["free", "pro", "enterprise"]
# Retry-After must stay within an hour, so no rule may have a longer window.
MAX_RATE_LIMIT_WINDOW_SECONDS = 3600
_DEFAULT_SUBMIT: dict[TierName, str] = {
    "free": "10/hour",
    "pro": "100/hour",
    "enterprise": "1000/hour",
}
_DEFAULT_ACTIVE_JOBS: dict[TierName, int] = {"free": 2, "pro": 10, "enterprise": 50}
_DEFAULT_WAITING_JOBS: dict[TierName, int] = {
    "free": 20,
    "pro": 200,
    "enterprise": 2000,
}
_DEFAULT_SWEEP_COMBINATIONS: dict[TierName, int] = {
    "free": 100,
    "pro": 5_000,
    "enterprise": 50_000,
}


def _check_rule(rule: str) -> str:
    """``"10/hour"``, ``"5 per 15 minutes"`` (the ``limits`` notation), one rule."""
    try:
        items = limits.parse_many(rule)
    except ValueError as exc:
        raise ValueError(f"invalid rate limit {rule!r}: {exc}") from exc
    if len(items) != 1 or items[0].amount < 1:
        raise ValueError(f"rate limit {rule!r} must be one positive rule")
    if items[0].get_expiry() > MAX_RATE_LIMIT_WINDOW_SECONDS:
        raise ValueError(f"rate limit {rule!r}: the window must be at most 1 hour")
    return rule


class RateLimitRules(BaseModel):
    """The one rate-limit rule table (env ``RATE_LIMITS`` as JSON; keys left out keep
    their defaults, e.g. ``RATE_LIMITS='{"submit": {"free": "20/hour"}}'``).

    * ``submit``: accepted ``POST /v1/backtest`` per user and rolling window, by tier.
    * ``active_jobs``: pending + running jobs a user may have at once, by tier;
      submissions over it wait as ``queued`` (``app.jobs.scheduler``).
    * ``waiting_jobs``: queued jobs a user may have at once, by tier; a submission
      over it is refused (429), the queue's backstop.
    * ``sweep_combinations``: combinations one parameter sweep may have (its grid's
      full product, before invalid ones are dropped), by tier.
    * ``api``: every other authenticated request, per user.
    * ``auth_ip``: register/login/token requests per client IP.
    * ``login_failures``: failed logins per (username, client address) before
      further tries from that address get 429.
    * ``login_failures_account``: failed logins per username from all addresses;
      when full, each address may fail only once per window (the owner, who has
      not failed, still logs in). See ``app.core.rate_limit.LoginThrottle``.

    Admins are exempt from the per-user rules (not from the per-IP ones).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    submit: dict[TierName, str] = Field(default_factory=lambda: dict(_DEFAULT_SUBMIT))
    active_jobs: dict[TierName, int] = Field(
        default_factory=lambda: dict(_DEFAULT_ACTIVE_JOBS)
    )
    sweep_combinations: dict[TierName, int] = Field(
        default_factory=lambda: dict(_DEFAULT_SWEEP_COMBINATIONS)
    )
    waiting_jobs: dict[TierName, int] = Field(
        default_factory=lambda: dict(_DEFAULT_WAITING_JOBS)
    )
    api: str = "600/minute"
    auth_ip: str = "10/minute"
    login_failures: str = "5 per 15 minutes"
    login_failures_account: str = "50 per 15 minutes"

    @field_validator("submit", mode="before")
    @classmethod
    def _submit_defaults(cls, value: Any) -> Any:
        return {**_DEFAULT_SUBMIT, **value} if isinstance(value, dict) else value

    @field_validator("active_jobs", mode="before")
    @classmethod
    def _active_defaults(cls, value: Any) -> Any:
        return {**_DEFAULT_ACTIVE_JOBS, **value} if isinstance(value, dict) else value

    @field_validator("waiting_jobs", mode="before")
    @classmethod
    def _waiting_defaults(cls, value: Any) -> Any:
        return {**_DEFAULT_WAITING_JOBS, **value} if isinstance(value, dict) else value

    @field_validator("sweep_combinations", mode="before")
    @classmethod
    def _sweep_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {**_DEFAULT_SWEEP_COMBINATIONS, **value}
        return value

    @field_validator("submit")
    @classmethod
    def _check_submit(cls, value: dict[TierName, str]) -> dict[TierName, str]:
        return {tier: _check_rule(rule) for tier, rule in value.items()}

    @field_validator("active_jobs", "sweep_combinations", "waiting_jobs")
    @classmethod
    def _check_active(cls, value: dict[TierName, int]) -> dict[TierName, int]:
        if any(cap < 1 for cap in value.values()):
            raise ValueError(
                "active_jobs, waiting_jobs and sweep_combinations caps must be >= 1"
            )
        return value

    @field_validator("api", "auth_ip", "login_failures", "login_failures_account")
    @classmethod
    def _check_single(cls, value: str) -> str:
        return _check_rule(value)


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
    # Sized for ~30 requests in flight per API process: a pool smaller than that
    # queues requests for a connection and sends p99 latency up (measured: 1 s at 64
    # connections with 5+10 per process, ~0.1 s with 20+10).
    db_pool_size: int = Field(default=20, ge=1, le=100)
    # Extra connections allowed above db_pool_size under burst load (PostgreSQL only).
    # A deployment's total is API processes × (pool + overflow) + worker processes ×
    # 1-2 (a job holds one connection at a time) + beat; keep it well under the
    # server's max_connections (README "Connection budget").
    db_max_overflow: int = Field(default=10, ge=0, le=100)
    # When every pooled connection is busy a request waits at most this long for one,
    # then gets 503 + Retry-After (never a hang, never a 500).
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Log every SQL statement (SQLAlchemy echo); for debugging only.
    db_echo: bool = False
    # How long a SQLite writer waits for the file lock before "database is locked".
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0, le=600_000)
    # Embedded mode queues its submissions in-process (one writes at a time); a
    # submission waiting longer than this for its turn gets 503 + Retry-After
    # (app.jobs.service).
    sqlite_submit_wait_seconds: float = Field(default=60.0, gt=0, le=600)
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
    # The scheduler (app.jobs.scheduler) keeps at most this many dispatched jobs
    # waiting in the broker (``pending``: sent, not claimed yet). Small, so a newly
    # queued job of another user overtakes a deep backlog: it waits behind at most
    # this many jobs plus the runs in progress. Workers claim one, the claim
    # dispatches the next, so 1 keeps every worker busy.
    queue_dispatch_ahead: int = Field(default=1, ge=1, le=1000)
    # The run time assumed for a queue ETA before any job has finished (seconds).
    queue_default_run_seconds: float = Field(default=10.0, gt=0, le=3600)
    # A job's own time limit (the soft one: the job fails with error_code "timeout"),
    # by default and the most a tier (or an admin, key "admin") may have; a kind may
    # ask for more than the default (a sweep), never more than its owner's tier max.
    # The hard limit (the worker process is killed) is the soft one + the grace.
    job_time_limit_seconds: int = Field(default=600, ge=1, le=3600)
    job_time_limit_max_seconds: dict[str, int] = Field(
        default_factory=lambda: {
            "free": 600,
            "pro": 600,
            "enterprise": 3600,
            "admin": 3600,
        }
    )
    job_time_limit_grace_seconds: int = Field(default=60, ge=1, le=600)
    # A job may stop its worker (crash, kill, hard time limit) this many times; the
    # delivery after that fails it and lists it as a dead letter.
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
    # A sweep's rows are cut into chunks of this many combinations that several
    # workers share; the sweep's job asks for at most this many helper tasks.
    sweep_chunk_size: int = Field(default=64, ge=1, le=10_000)
    sweep_max_helpers: int = Field(default=8, ge=0, le=64)
    # A sweep's completion holds its (days x combinations) float64 returns matrix in
    # memory up to this many bytes, above in a memory-mapped temporary file (page
    # cache the kernel can evict: 50,000 combinations x 10 years are 1 GB).
    sweep_returns_in_memory_bytes: int = Field(default=256 * 2**20, ge=0)

    # --- rate limits and abuse limits ------------------------------------------
    # The rule table (JSON in RATE_LIMITS); see RateLimitRules for keys and defaults.
    rate_limits: RateLimitRules = Field(default_factory=RateLimitRules)
    # Master switch of the per-user/per-IP rate limits and the active-jobs cap.
    rate_limit_enabled: bool = True
    # Prefix of the limiter's Redis keys (several deployments may share one Redis).
    rate_limit_key_prefix: str = "ratelimit"
    # Limiter Redis calls time out after this long (then: fail open / fallback)...
    rate_limit_redis_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    # ...and after a Redis error the limiter skips Redis for this long.
    rate_limit_redis_retry_seconds: float = Field(default=5.0, ge=0, le=300)
    # Submissions while Redis is unavailable: count the user's jobs in the database
    # ("database", exact) or refuse them with 503 ("reject").
    rate_limit_submit_fallback: Literal["database", "reject"] = "database"
    # Proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty: none.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Idempotency keys (and their stored responses) are kept at least this long.
    idempotency_ttl_hours: float = Field(default=24.0, ge=24, le=24 * 30)
    # Request bodies above this size are refused with 413.
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    # At most this many symbols / screening filters per backtest request (else 400).
    max_symbols_per_request: int = Field(default=1000, ge=1, le=1000)
    max_filters_per_request: int = Field(default=20, ge=0, le=20)
    # Concurrent progress WebSockets per user (all API processes together).
    ws_max_connections_per_user: int = Field(default=5, ge=1, le=1000)

    # --- observability and caching -------------------------------------------
    # Serve Prometheus metrics at GET /metrics on the API.
    metrics_enabled: bool = True
    # Bearer token /metrics requires (`Authorization: Bearer <token>`); unset: open
    # in development/test, and NOT served in production (set one to scrape it).
    metrics_token: str | None = None
    # Serve /docs, /redoc and /openapi.json (public: the API contract is no secret).
    docs_enabled: bool = True
    # Port of a distributed Celery worker's Prometheus endpoint (0 = none).
    worker_metrics_port: int = Field(default=9808, ge=0, le=65535)
    # /ready asks the Celery workers for a ping with this timeout, and reuses the
    # answer for this long (probes every few seconds must not flood the broker).
    worker_ping_timeout_seconds: float = Field(default=1.0, gt=0, le=10)
    worker_ping_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Chart data of completed backtests is cached in Redis this long (0 = off).
    chart_cache_ttl_seconds: int = Field(default=86_400, ge=0, le=30 * 86_400)

    # --- notifications (webhooks, shares, templates, schedules, e-mail) --------
    # Absolute base of links in webhook payloads, e-mails and share URLs, e.g.
    # https://backtest.example.com (empty: links are paths).
    public_base_url: str = ""
    # Hosts a webhook may reach over http and on loopback/private addresses
    # (default none: https to public addresses only).
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    # Delay before each attempt of a delivery (the first: immediately); ~24 h total.
    webhook_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [
            0.0,
            5.0,
            300.0,
            1800.0,
            7200.0,
            18000.0,
            36000.0,
            36000.0,
        ],
        min_length=1,
        max_length=20,
    )
    # Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter].
    webhook_retry_jitter: float = Field(default=0.1, ge=0, le=0.5)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # An endpoint whose deliveries all failed for this long is disabled.
    webhook_disable_after_hours: float = Field(default=120.0, gt=0, le=24 * 30)
    webhook_max_endpoints_per_user: int = Field(default=10, ge=1, le=100)
    # Public result pages (GET /v1/public/{token}, /s/{token}) per client IP.
    share_rate_limit: str = "60/minute"
    # Schedules: shortest interval between two runs and active schedules per user.
    schedule_min_interval_seconds: int = Field(default=3600, ge=60, le=86_400 * 7)
    schedule_max_active_per_user: int = Field(default=10, ge=1, le=100)
    # Completion e-mails: smtp://user:password@host:port (smtps:// for TLS);
    # unset: notify_email is refused with a 400.
    smtp_url: str | None = None
    smtp_from: str = "backtests@localhost"
    # The notification outbox (webhook deliveries, pending e-mails): a pending row
    # whose attempt is overdue by this many seconds lost its message (the worker
    # died after the commit, the broker was down) and is queued again by
    # ``notifications.resend``, which runs every ``..._INTERVAL_SECONDS`` on the
    # maintenance queue (Celery beat; in embedded mode, every sweep).
    notification_resend_after_seconds: float = Field(default=60.0, ge=0, le=86_400)
    notification_resend_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    # E-mail attempts (outbox rows) before a message is marked failed; the delay
    # after attempt n is min(5 * 4**(n-1), 3600) seconds.
    email_max_attempts: int = Field(default=6, ge=1, le=20)

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _non_negative_delays(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays must not be negative")
        return value

    @field_validator("share_rate_limit")
    @classmethod
    def _check_share_rule(cls, value: str) -> str:
        return _check_rule(value)

    @field_validator("job_time_limit_max_seconds")
    @classmethod
    def _check_time_limit_max(cls, value: dict[str, int]) -> dict[str, int]:
        allowed = {"free", "pro", "enterprise", "admin"}
        if unknown := set(value) - allowed:
            raise ValueError(f"unknown tiers {sorted(unknown)}; use {sorted(allowed)}")
        if any(not 1 <= seconds <= 3600 for seconds in value.values()):
            raise ValueError("time limits must be between 1 and 3600 seconds")
        return value

    @property
    def longest_job_seconds(self) -> int:
        """The largest hard limit any job can get (the broker's visibility timeout
        must exceed it)."""
        most = max(
            [self.job_time_limit_seconds, *self.job_time_limit_max_seconds.values()]
        )
        return most + self.job_time_limit_grace_seconds

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
