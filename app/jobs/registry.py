"""Job kinds: what the one job lifecycle needs to know about each kind of job.

A kind registers itself once (``register(JobKind(...))``, at import of its domain's
``run`` module) and ``app.jobs`` never imports a domain: the runner looks the kind up
by the ``kind`` column of the job row. Adding a kind is one domain folder and one
registration; see README "Adding a job kind".

The contract, on the worker side:

* ``run(context)`` does the work in a worker thread. It reports progress through
  ``context.reporter.progress(...)``, polls ``context.reporter.cancelled()`` at least
  every second or so, and returns a :class:`Completion`. It raises
  :class:`JobCancelled` when it stopped at a cancel check and :class:`JobFailed` (with
  a message for the user) when the job cannot succeed; anything else is a bug (the
  job fails as "internal error" and the traceback is logged).
  A kind that can predict its cost hands the runner a plan first
  (``reporter.plan(phases)``, each phase with its predicted seconds) and enters each
  phase (``reporter.phase(name)``); its ``progress`` fractions are then the current
  phase's own, and the runner shows the phase-weighted whole (:mod:`app.jobs.eta`).
  Saving is the runner's last phase, "saving".
* ``Completion.save(session, job_id)`` writes the kind's own result rows in the same
  transaction that marks the job completed (guarded on the claim), so a completed job
  always has all its results and a cancelled one none.
"""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.jobs.eta import Phase


class JobCancelled(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The run stopped at a cancel check (cancelled, or the job was taken over)."""


class JobFailed(Exception):  # noqa: N818 - reads as what happened to the job
    """The job cannot succeed; ``str(exc)`` is shown to the user as its error."""


class Reporter(Protocol):
    """Progress, heartbeat and the cancel check of one run (``app.jobs.runner``).

    ``extra``: a kind's own fields for the live progress frame (``ProgressMessage``
    allows extra fields), e.g. a sweep's ``combinations_done`` and ``best``."""

    def progress(
        self,
        fraction: float,
        current_date: dt.date | None,
        work_done: int,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None: ...

    def cancelled(self) -> bool: ...

    def plan(self, phases: Sequence[Phase]) -> None:
        """The run's phases and their predicted seconds (:mod:`app.jobs.eta`): from
        now on ``progress`` fractions are the current phase's own. Called again, it
        refines the predictions of the phases not started yet."""

    def phase(self, name: str) -> None:
        """The run enters phase ``name`` of its plan."""


@dataclass(frozen=True)
class RunContext:
    job_id: uuid.UUID
    config: dict[str, Any]
    name: str | None
    settings: Settings
    reporter: Reporter


async def _nothing_to_save(session: AsyncSession, job_id: uuid.UUID) -> None:
    return None


@dataclass(frozen=True)
class Completion:
    """What a finished run hands back: the headline results stored on the job row and
    the kind's own result rows (``save``)."""

    metrics: dict[str, Any] | None
    current_date: dt.date | None = None
    work_done: int = 0
    save: Callable[[AsyncSession, uuid.UUID], Awaitable[None]] = field(
        default=_nothing_to_save
    )

    def headline(self, name: str) -> float | None:
        value = (self.metrics or {}).get(name)
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class JobKind:
    """One kind of job. ``name`` is stored in ``jobs.kind``; ``label`` is the noun in
    messages ("Backtest cancelled."); ``warm_up`` runs once in a worker's main
    process before it forks (e.g. load a dataset so children share it)."""

    name: str
    label: str
    run: Callable[[RunContext], Completion]
    warm_up: Callable[[Settings], None] | None = None
    # Where a job of this kind is read on the API (links in notifications);
    # default ``/v1/<name>``.
    api_path: str | None = None
    # The soft time limit this kind asks for (default: JOB_TIME_LIMIT_SECONDS),
    # capped by the owner's tier (``app.jobs.limits``).
    time_limit_seconds: int | None = None

    @property
    def path(self) -> str:
        return self.api_path or f"/v1/{self.name}"


_KINDS: dict[str, JobKind] = {}

RequestValidator = Callable[[dict[str, Any], Settings], Awaitable[dict[str, Any]]]
"""``validate(body, settings) -> config``: check a submission body of one kind as its
own API route does and return the configuration to store. Raises
``pydantic.ValidationError`` for a malformed body and ``ValidationFailed`` (field
``body.<path>``) for a semantically invalid one."""
_VALIDATORS: dict[str, RequestValidator] = {}


def register_validator(kind: str, validate: RequestValidator) -> None:
    """Publish ``kind``'s request validation, so another kind can build and submit a
    job of this kind (a sweep submits a backtest of one of its rows) without
    importing its domain. Registered by the kind's API-side service module."""
    _VALIDATORS[kind] = validate


def validator(kind: str) -> RequestValidator:
    try:
        return _VALIDATORS[kind]
    except KeyError:
        raise LookupError(f"no request validator for job kind {kind!r}") from None


def register(kind: JobKind) -> JobKind:
    """Register ``kind`` (idempotent for the same object; a second, different kind
    under one name is a programming error)."""
    existing = _KINDS.get(kind.name)
    if existing is not None and existing is not kind:
        raise ValueError(f"job kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def deferred(target: str) -> Callable[..., Any]:
    """``"package.module:function"`` as a callable that imports the module on its
    first call. A kind's ``run`` and ``warm_up`` live in modules that import the
    engine's kernels and the price store (numba, pyarrow): registering them this way
    keeps those out of the API process, which only needs the kind's name, label and
    limits (README "Run modes": what the API holds vs the workers)."""
    module_name, _, attribute = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        function = getattr(importlib.import_module(module_name), attribute)
        return function(*args, **kwargs)

    call.__qualname__ = call.__name__ = f"deferred({target})"
    return call


def get(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r} is registered") from None


def registered() -> list[JobKind]:
    return list(_KINDS.values())


# --- narrow hooks for the notification domains ------------------------------------
# ``app.jobs`` knows no domain; webhooks, e-mail and schedules plug into the job
# lifecycle here (registered at import of their ``hooks`` modules, see
# ``app.kinds``).


@dataclass(frozen=True)
class JobEvent:
    """A job reached a terminal state that its owner may want to hear about
    (``completed`` or ``failed``); ``type`` is ``"<kind>.<status>"``."""

    job_id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    status: str
    name: str | None
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None

    @property
    def type(self) -> str:
        return f"{self.kind}.{self.status}"


@dataclass(frozen=True)
class Notice:
    """Something other than a job's end that an owner may want to hear about
    (``schedule.refused``: a schedule's firing was refused). ``data`` is the
    webhook payload's ``data``; ``subject``/``text`` the e-mail's; ``config`` the
    settings that decide whether to e-mail (``notify_email``)."""

    type: str
    user_id: uuid.UUID
    data: dict[str, Any]
    subject: str
    text: str
    config: dict[str, Any] = field(default_factory=dict)


# The notification outbox: called INSIDE the transaction that saves the terminal
# state (never commits): a listener writes its outbox rows (webhook deliveries,
# pending e-mails), so they exist if and only if the state does, and returns what
# to run after the commit (queue the rows' messages), or None. The periodic
# re-send (``on_resend``) sends rows whose after-commit step never ran (the worker
# died in between, the broker was down).
AfterCommit = Callable[[], Awaitable[None]]
CompletionListener = Callable[
    [AsyncSession, JobEvent, Settings], Awaitable[AfterCommit | None]
]
# The same for a Notice, in the transaction that records what it announces.
NoticeListener = Callable[
    [AsyncSession, Notice, Settings], Awaitable[AfterCommit | None]
]
# Called before a submission is admitted (no quota taken yet); raises an AppError
# (e.g. ValidationFailed for a callback_url the service must not call).
SubmissionCheck = Callable[
    [AsyncSession, Any, str, dict[str, Any], Settings], Awaitable[None]
]
# Run at the end of every sweep (Celery beat / the embedded sweeper loop).
SweepHook = Callable[[AsyncSession, Settings, dt.datetime], Awaitable[Any]]

_LISTENERS: list[CompletionListener] = []
_CHECKS: list[SubmissionCheck] = []
_SWEEP_HOOKS: list[SweepHook] = []
_RESEND_HOOKS: list[SweepHook] = []
_NOTICE_LISTENERS: list[NoticeListener] = []


def _add(hooks: list[Any], hook: Any) -> None:
    if hook not in hooks:
        hooks.append(hook)


def on_completion(listener: CompletionListener) -> CompletionListener:
    """Register ``listener`` for every job reaching ``completed`` or ``failed``
    (called in the completing transaction, see ``CompletionListener``)."""
    _add(_LISTENERS, listener)
    return listener


def on_submission(check: SubmissionCheck) -> SubmissionCheck:
    """Register ``check(session, user, kind, config, settings)``."""
    _add(_CHECKS, check)
    return check


def on_sweep(hook: SweepHook) -> SweepHook:
    _add(_SWEEP_HOOKS, hook)
    return hook


def on_resend(hook: SweepHook) -> SweepHook:
    """Register an outbox re-send: ``hook(session, settings, now)`` queues again the
    rows whose message was never picked up (``notifications.resend``, periodic)."""
    _add(_RESEND_HOOKS, hook)
    return hook


def resend_hooks() -> list[SweepHook]:
    return list(_RESEND_HOOKS)


def on_notice(listener: NoticeListener) -> NoticeListener:
    """Register ``listener`` for every ``Notice`` (webhooks, e-mail)."""
    _add(_NOTICE_LISTENERS, listener)
    return listener


def notice_listeners() -> list[NoticeListener]:
    return list(_NOTICE_LISTENERS)


def completion_listeners() -> list[CompletionListener]:
    return list(_LISTENERS)


def submission_checks() -> list[SubmissionCheck]:
    return list(_CHECKS)


def sweep_hooks() -> list[SweepHook]:
    return list(_SWEEP_HOOKS)


@dataclass(frozen=True)
class KindApi:
    """What other domains may ask of a kind on the API side, without importing it
    (templates validate and submit a kind's configuration; shares show its public
    results). A kind exposes it once from its API-side service module (``expose``).

    * ``validate(config, settings)`` → the normalised configuration, or raises
      ``ValidationFailed`` naming the field (as ``POST /v1/<kind>`` would).
    * ``submit(session, user=, config=, settings=, quota=, key=)`` → an
      ``app.jobs.idempotency.Outcome``: a normal submission (quota, idempotency).
    * ``public_results(session, job_id)`` → the extra, account-free results a public
      page may show (a backtest's chart), or None.
    * ``private_fields``: configuration fields never shown publicly.
    """

    validate: Callable[[dict[str, Any], Settings], Awaitable[dict[str, Any]]]
    submit: Callable[..., Awaitable[Any]]
    public_results: (
        Callable[[AsyncSession, uuid.UUID], Awaitable[dict[str, Any]]] | None
    ) = None
    private_fields: frozenset[str] = frozenset()


_APIS: dict[str, KindApi] = {}


def expose(name: str, api: KindApi) -> KindApi:
    _APIS[name] = api
    return api


def api_of(name: str) -> KindApi:
    try:
        return _APIS[name]
    except KeyError:
        raise LookupError(f"job kind {name!r} exposes no API") from None
