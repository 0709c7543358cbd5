"""Backtest use cases on the API side: validate and submit, read trades and charts.

The lifecycle (admission, storage, queueing, status, history, cancel) is the one of
every job (:mod:`app.jobs.service`); this module adds what is particular to a
backtest: validating the request against the dataset and reading its results.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import anyio
import numpy as np
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.caching import JsonCache
from app.backtests import repository
from app.backtests.charts import DEFAULT_POINTS, chart_response
from app.backtests.kind import BACKTEST
from app.backtests.repository import TradeSort
from app.backtests.schemas import BacktestCreated, BacktestRequest
from app.core.config import Settings
from app.core.errors import Conflict, ValidationFailed
from app.data.access import catalog_for
from app.data.catalog import DatasetCatalog
from app.data.membership import has_membership
from app.db.models import Job, User
from app.engine.backtest import check_config
from app.engine.config import BacktestConfig
from app.engine.errors import InvalidInputError
from app.engine.universe import BoolMatrix
from app.jobs import idempotency, registry
from app.jobs import service as jobs
from app.jobs.quotas import SubmissionQuota

KIND = BACKTEST.name
# Engine field names -> the API's names (the request says "commission").
_API_FIELDS = {"commission_rate": "commission", "slippage_rate": "slippage"}


def api_field(engine_field: str | None) -> str | None:
    if engine_field is None:
        return None
    head, sep, rest = engine_field.partition(".")
    return "body." + _API_FIELDS.get(head, head) + sep + rest


def check_request_limits(request: BacktestRequest, settings: Settings) -> None:
    """Abuse limits on the request's size: symbols (``symbols`` and a screen's
    ``universe``) and screening filters, each at most the configured maximum (400)."""
    universe = (request.filter_criteria or {}).get("universe")
    for field_name, symbols in (
        ("body.symbols", request.symbols),
        ("body.filter_criteria.universe", universe),
    ):
        if (
            isinstance(symbols, list)
            and len(symbols) > settings.max_symbols_per_request
        ):
            raise ValidationFailed(
                f"At most {settings.max_symbols_per_request} symbols per backtest "
                f"(got {len(symbols)}).",
                field=field_name,
            )
    filters = (request.filter_criteria or {}).get("filters")
    if isinstance(filters, list) and len(filters) > settings.max_filters_per_request:
        raise ValidationFailed(
            f"At most {settings.max_filters_per_request} filters per screen "
            f"(got {len(filters)}).",
            field="body.filter_criteria.filters",
        )


async def validate(request: BacktestRequest, settings: Settings) -> None:
    """Everything that can make the run fail that is knowable now: 400 naming the
    field, before any quota is taken.

    Checked against the dataset's light catalog (``app.data.catalog``), never its
    prices: the engine's own ``check_config`` runs on the catalog's skeleton (the
    sessions, symbols and descriptions; prices that take no memory), and the one
    check that needs a price (a benchmark's close on the first session of the range)
    reads the catalog's bar runs. Same checks, same order, same messages as on the
    loaded dataset (tests/unit/test_light_catalog.py compares them)."""
    check_request_limits(request, settings)
    config = request.to_config()
    catalog = await catalog_for(settings, config.dataset)
    membership = None
    if config.universe == "sp500_pit":
        if not has_membership(config.dataset):
            raise ValidationFailed(
                f"universe 'sp500_pit' needs S&P 500 membership, which only the "
                f"bundled dataset has; dataset {catalog.name!r} is imported: use "
                "universe 'all' (or omit universe)",
                field="body.universe",
            )
        membership = catalog.membership_stand_in()
    try:
        check_catalog_config(config, catalog, membership=membership)
    except InvalidInputError as exc:
        raise ValidationFailed(exc.message, field=api_field(exc.field)) from exc


def check_catalog_config(
    config: BacktestConfig,
    catalog: DatasetCatalog,
    *,
    membership: BoolMatrix | None = None,
) -> None:
    """The engine's ``check_config`` against a catalog instead of the prices."""
    data = catalog.skeleton
    check_config(config, data, membership=membership)
    entries = config.benchmarks or ((config.benchmark,) if config.benchmark else ())
    start_row = data.row_of(np.datetime64(config.start_date, "D"))
    for entry in entries:
        # The engine's last check (app.engine.backtest._symbol_series): the skeleton's
        # prices are all present, so it is answered here from the bar runs.
        if isinstance(entry, str) and not catalog.has_bar(entry, start_row):
            raise InvalidInputError(
                f"benchmark {entry} has no price on the first day of the range",
                field="benchmarks",
            )


async def submit(
    session: AsyncSession,
    *,
    user: User,
    request: BacktestRequest,
    settings: Settings,
    quota: SubmissionQuota | None = None,
) -> Job:
    """Validate, then admit, store and queue one backtest."""
    await validate(request, settings)
    return await jobs.submit(
        session,
        user=user,
        kind=KIND,
        config=request.model_dump(mode="json"),
        name=request.name,
        quota=quota,
        settings=settings,
    )


async def submit_once(
    session: AsyncSession,
    *,
    user: User,
    request: BacktestRequest,
    settings: Settings,
    quota: SubmissionQuota | None,
    key: str | None,
) -> idempotency.Outcome:
    """:func:`submit`, at most once per ``Idempotency-Key``."""

    async def create() -> dict[str, Any]:
        row = await submit(
            session, user=user, request=request, settings=settings, quota=quota
        )
        created = BacktestCreated(
            task_id=row.id, status=row.status, created_at=row.created_at
        )
        return created.model_dump(mode="json")

    return await idempotency.submit_once(
        session,
        user=user,
        request=request,
        scope=KIND,
        settings=settings,
        key=key,
        create=create,
    )


async def trades(
    session: AsyncSession,
    *,
    row: Job,
    symbol: str | None,
    start_date: dt.date | None,
    end_date: dt.date | None,
    sort: TradeSort,
    limit: int | None,
    offset: int,
) -> tuple[list[Any], int]:
    """A page of a completed backtest's lots (``row``: already read for its owner);
    ``limit=None``: every matching lot."""
    jobs.require_completed(row)
    return await repository.page(
        session,
        row.id,
        symbol=symbol.upper() if symbol else None,
        entry_from=start_date,
        entry_to=end_date,
        sort=sort,
        limit=limit,
        offset=offset,
    )


async def chart(
    session: AsyncSession,
    *,
    row: Job,
    max_points: int,
    cache: JsonCache | None = None,
) -> dict[str, Any]:
    """The chart of a completed job (down-sampled to ``max_points``), served from the
    Redis cache when present: completed results are immutable."""
    jobs.require_completed(row)
    variant = str(max_points)
    if cache is not None and (hit := await cache.get(f"chart:{row.id}", variant)):
        return dict(hit)
    payload = await repository.get_series(session, row.id)
    if payload is None:  # completed rows always have one (same transaction)
        raise Conflict("Chart data is not available for this backtest.")
    body = await anyio.to_thread.run_sync(chart_response, payload, max_points)
    if cache is not None:
        await cache.set(f"chart:{row.id}", variant, body)
    return body


async def validate_body(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """POST /v1/backtest's validation of a body built elsewhere (a sweep's row, via
    ``app.jobs.registry.validator``); returns the config a backtest job stores."""
    request = BacktestRequest.model_validate(body)
    await validate(request, settings)
    return request.model_dump(mode="json")


registry.register_validator(KIND, validate_body)
# --- what other domains may ask of a backtest (app.jobs.registry.KindApi) ---------
PRIVATE_FIELDS = frozenset({"callback_url", "notify_email"})


def parse_config(config: dict[str, Any], *, field: str) -> BacktestRequest:
    """``config`` as a request, or 400 naming the first bad field under ``field``."""
    try:
        return BacktestRequest.model_validate(config)
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValidationFailed(
            f"{error['msg']}", field=f"{field}.{where}" if where else field
        ) from exc


async def validate_config(config: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Validated as ``POST /v1/backtest`` validates a body; the normalised config."""
    request = parse_config(config, field="body.config")
    try:
        await validate(request, settings)
    except ValidationFailed as exc:
        raise _under_config(exc) from exc
    return request.model_dump(mode="json", exclude_defaults=True)


def _under_config(exc: ValidationFailed) -> ValidationFailed:
    details = exc.details if isinstance(exc.details, list) else []
    field = details[0].get("field") if details else None
    renamed = field.replace("body.", "body.config.", 1) if field else "body.config"
    return ValidationFailed(exc.message, field=renamed)


async def submit_config(
    session: AsyncSession,
    *,
    user: User,
    config: dict[str, Any],
    settings: Settings,
    quota: SubmissionQuota | None,
    key: str | None,
) -> idempotency.Outcome:
    request = parse_config(config, field="body")
    return await submit_once(
        session, user=user, request=request, settings=settings, quota=quota, key=key
    )


async def public_results(session: AsyncSession, job_id: uuid.UUID) -> dict[str, Any]:
    payload = await repository.get_series(session, job_id)
    if payload is None:
        return {"chart": None}
    body = await anyio.to_thread.run_sync(chart_response, payload, DEFAULT_POINTS)
    return {"chart": body}


registry.expose(
    KIND,
    registry.KindApi(
        validate=validate_config,
        submit=submit_config,
        public_results=public_results,
        private_fields=PRIVATE_FIELDS,
    ),
)
