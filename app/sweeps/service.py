"""Sweep use cases on the API side: validate and submit, read rows, heatmap,
returns, and a row re-run as a normal backtest.

The lifecycle (admission, storage, queueing, status, history, cancel) is the one of
every job (:mod:`app.jobs.service`). The base request is validated by the backtest
kind's own validator, reached through ``app.jobs.registry.validator("backtest")``
(domains never import each other), which also checks the row a client re-runs.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import itertools
import time
from collections.abc import Mapping
from typing import Any

import anyio
import numpy as np
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import AppError, Conflict, NotFound, ValidationFailed, field_path
from app.db.models import SORTABLE_METRICS, Job, SweepRow, User
from app.engine.errors import InvalidInputError
from app.engine.strategies import get_strategy_def, resolve_strategy
from app.jobs import idempotency, registry
from app.jobs import service as jobs
from app.jobs.quotas import SubmissionQuota
from app.jobs.repository import JobView
from app.sweeps import grid, repository, walk_forward
from app.sweeps.kind import KIND_NAME
from app.sweeps.schemas import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    OBJECTIVES,
    RowBacktestCreated,
    SweepCreated,
    SweepRequest,
    SweepRowOut,
)

KIND = KIND_NAME
BACKTEST_KIND = "backtest"
# Every objective is sortable; each sortable metric has its own indexed column
# (app.db.models.sweep.SORTABLE_METRICS).
SORTABLE = frozenset({"index", "psr", *SORTABLE_METRICS})
assert set(OBJECTIVES) <= SORTABLE, "every objective must be sortable"
HEATMAP_METRICS = frozenset(SORTABLE - {"index"})


class InvalidBodyError(AppError):
    """A 400 listing several fields, like FastAPI's own validation errors."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__("ValidationError", "Request validation failed", 400, details)


async def validate_backtest(
    body: dict[str, Any], settings: Settings, *, at: str
) -> dict[str, Any]:
    """The backtest kind's validation of ``body``; error fields under ``at``."""
    try:
        return await registry.validator(BACKTEST_KIND)(body, settings)
    except ValidationError as exc:
        details = [
            {"field": field_path((at, *e.get("loc", ()))), "message": e["msg"]}
            for e in exc.errors()
        ]
        raise InvalidBodyError(details) from exc
    except ValidationFailed as exc:
        details = [
            {**d, "field": at + d["field"].removeprefix("body")}
            for d in (exc.details or [])
        ]
        raise InvalidBodyError(
            details or [{"field": at, "message": exc.message}]
        ) from exc


def _expand_grid(request: SweepRequest, base: dict[str, Any]) -> dict[str, list[Any]]:
    params: list[str] = []
    if base.get("strategy_id") is not None:
        try:
            params = [p.name for p in get_strategy_def(base["strategy_id"]).params]
        except InvalidInputError:
            params = []
    expanded: dict[str, list[Any]] = {}
    for key, spec in request.grid.items():
        if reason := grid.key_error(key, base, params):
            raise ValidationFailed(reason, field=f"body.grid.{key}")
        try:
            expanded[key] = grid.expand_values(spec)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field=f"body.grid.{key}") from exc
    return expanded


def _check_cap(expanded: Mapping[str, list[Any]], tier: str, settings: Settings) -> int:
    total = grid.size(expanded)
    cap = settings.rate_limits.sweep_combinations[tier]  # type: ignore[index]
    if total > cap:
        raise ValidationFailed(
            f"the grid has {total:,} combinations; the {tier} tier allows at "
            f"most {cap:,} per sweep",
            field="body.grid",
        )
    return total


async def _valid_mask(
    base: dict[str, Any], expanded: dict[str, list[Any]], settings: Settings
) -> tuple[list[bool], collections.Counter[str]]:
    """Which combinations are valid, and why the others are not (reason -> count).

    Settings outside the strategy (rebalancing, costs, execution) are checked one
    value at a time with the backtest validator; strategy parameters per distinct
    assignment with the engine's strategy resolution (e.g. momentum skip must stay
    below lookback), which is what that validator runs for them."""
    bad: dict[tuple[str, int], str] = {}
    scalar_keys = [k for k in expanded if k in grid.SCALAR_KEYS]
    strategy_keys = [k for k in expanded if k not in grid.SCALAR_KEYS]
    for key in scalar_keys:
        for i, value in enumerate(expanded[key]):
            try:
                await validate_backtest(grid.apply(base, {key: value}), settings, at="")
            except InvalidBodyError as exc:
                bad[key, i] = f"{key}={value!r}: {exc.details[0]['message']}"
    strategy_reasons = await anyio.to_thread.run_sync(
        _strategy_validity, base, {k: expanded[k] for k in strategy_keys}
    )
    keys = list(expanded)
    reasons: collections.Counter[str] = collections.Counter()
    mask: list[bool] = []
    for combo in itertools.product(*(range(len(expanded[k])) for k in keys)):
        chosen = dict(zip(keys, combo, strict=True))
        reason = next(
            (bad[k, chosen[k]] for k in scalar_keys if (k, chosen[k]) in bad),
            strategy_reasons[tuple(chosen[k] for k in strategy_keys)],
        )
        mask.append(not reason)
        if reason:
            reasons[reason] += 1
    return mask, reasons


def _strategy_validity(
    base: dict[str, Any], strategy_grid: dict[str, list[Any]]
) -> dict[tuple[int, ...], str]:
    """Position tuple over the strategy keys -> "" (valid) or the reason."""
    keys = list(strategy_grid)
    out: dict[tuple[int, ...], str] = {}
    for combo in itertools.product(*(range(len(strategy_grid[k])) for k in keys)):
        params = {k: strategy_grid[k][i] for k, i in zip(keys, combo, strict=True)}
        body = grid.apply(base, params)
        try:
            resolve_strategy(
                body.get("strategy_id"),
                body.get("strategy_params"),
                body.get("filter_criteria"),
            )
            out[combo] = ""
        except InvalidInputError as exc:
            out[combo] = f"{exc.field or 'strategy'}: {exc.message}"
    return out


async def prepare(
    request: SweepRequest, *, tier: str, settings: Settings
) -> dict[str, Any]:
    """Validate the whole sweep; the config its job stores (400s name the field)."""
    base = await validate_backtest(request.base, settings, at="body.base")
    expanded = _expand_grid(request, base)
    total = _check_cap(expanded, tier, settings)
    mask, reasons = await _valid_mask(base, expanded, settings)
    valid = sum(mask)
    if valid == 0:
        top = "; ".join(r for r, _ in reasons.most_common(3))
        raise ValidationFailed(
            f"none of the {total:,} combinations is valid: {top}", field="body.grid"
        )
    spans = _walk_forward_windows(request, base)
    return {
        "walk_forward_windows": spans,
        "request": request.model_dump(mode="json"),
        "base": base,
        "grid": grid.stored(expanded),
        "valid": grid.pack(mask),
        "combinations": valid,
        "skipped_combinations": total - valid,
        "objective": request.objective,
        "overfitting_blocks": request.overfitting_blocks,
    }


def _walk_forward_windows(
    request: SweepRequest, base: dict[str, Any]
) -> list[list[str]] | None:
    spec = request.walk_forward
    if spec is None:
        return None
    spans = walk_forward.windows(
        dt.date.fromisoformat(base["start_date"]),
        dt.date.fromisoformat(base["end_date"]),
        train_months=spec.train_months,
        test_months=spec.test_months,
        anchored=spec.anchored,
    )
    if not spans:
        raise ValidationFailed(
            f"the base date range {base['start_date']}..{base['end_date']} holds no "
            f"window of {spec.train_months} train + {spec.test_months} test months",
            field="body.walk_forward",
        )
    return [[d.isoformat() for d in span] for span in spans]


async def submit_once(
    session: AsyncSession,
    *,
    user: User,
    request: SweepRequest,
    settings: Settings,
    quota: SubmissionQuota | None,
    key: str | None,
) -> idempotency.Outcome:
    """Validate, then admit, store and queue one sweep, at most once per key."""

    async def create() -> dict[str, Any]:
        config = await prepare(request, tier=user.tier, settings=settings)
        row = await jobs.submit(
            session,
            user=user,
            kind=KIND,
            config=config,
            name=request.name,
            quota=quota,
            settings=settings,
        )
        created = SweepCreated(
            sweep_id=row.id,
            status=row.status,
            combinations=config["combinations"],
            skipped_combinations=config["skipped_combinations"],
            created_at=row.created_at,
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


def higher_is_better(objective: str) -> bool:
    return objective in HIGHER_IS_BETTER


def row_out(row: SweepRow | repository.RowView) -> SweepRowOut:
    # Built without validation: the values are our own stored rows, and the
    # response model validates them once on the way out.
    return SweepRowOut.model_construct(
        index=row.index, params=row.params, metrics=row.metrics, psr=row.psr
    )


async def best(session: AsyncSession, job: JobView) -> SweepRowOut | None:
    objective = job.config["objective"]
    found = await repository.best(
        session, job.id, higher_is_better=objective not in LOWER_IS_BETTER
    )
    return None if found is None else row_out(found)


def eta_seconds(job: JobView) -> float | None:
    if job.status != "running" or job.started_at is None or job.progress <= 0:
        return 0.0 if job.status in {"completed", "failed", "cancelled"} else None
    elapsed = time.time() - job.started_at.timestamp()
    return round(elapsed * (100.0 - job.progress) / job.progress, 3)


def check_sort(sort: str) -> None:
    if sort.removeprefix("-") not in SORTABLE:
        allowed = ", ".join(sorted(SORTABLE))
        raise ValidationFailed(
            f"cannot sort by {sort!r}; sortable (prefix - for descending): {allowed}",
            field="query.sort",
        )


async def results(
    session: AsyncSession, *, job: Job, sort: str, limit: int, offset: int
) -> tuple[list[SweepRowOut], int]:
    """A page of rows; readable while running and after a cancel (finished rows)."""
    check_sort(sort)
    rows, total = await repository.page(
        session, job.id, sort=sort, limit=limit, offset=offset
    )
    return [row_out(r) for r in rows], total


async def heatmap(
    session: AsyncSession, *, job: Job, x: str, y: str, metric: str
) -> dict[str, Any]:
    """The metric over two grid keys; with other keys in the grid, each cell holds
    the best value over them (by the metric's own direction) and its row index."""
    expanded = grid.of_config(job.config)
    for name, key in (("x", x), ("y", y)):
        if key not in expanded:
            raise ValidationFailed(
                f"{key!r} is not a key of this sweep's grid ({', '.join(expanded)})",
                field=f"query.{name}",
            )
    if x == y:
        raise ValidationFailed("x and y must be different grid keys", field="query.y")
    if metric not in HEATMAP_METRICS:
        raise ValidationFailed(
            f"metric must be one of: {', '.join(sorted(HEATMAP_METRICS))}",
            field="query.metric",
        )
    # app.sweeps.rows runs the engine's batch kernels (numba): not on the API's
    # import path, only where a heatmap is read.
    from app.sweeps.rows import score  # noqa: PLC0415

    xs, ys = expanded[x], expanded[y]
    values: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    indexes: list[list[int | None]] = [[None] * len(xs) for _ in ys]
    x_pos = {repr(v): i for i, v in enumerate(xs)}
    y_pos = {repr(v): i for i, v in enumerate(ys)}
    for index, params, value in await repository.metric_cells(session, job.id, metric):
        s = score(value, metric)
        if s is None:
            continue
        i, j = y_pos[repr(params[y])], x_pos[repr(params[x])]
        current = values[i][j]
        if current is None or s > (score(current, metric) or -np.inf):
            values[i][j], indexes[i][j] = value, index
    return {
        "x": x, "y": y, "metric": metric, "x_values": xs, "y_values": ys,
        "values": values, "indexes": indexes,
    }  # fmt: skip


async def returns_table(
    session: AsyncSession, *, job: Job, fmt: str
) -> tuple[bytes, str]:
    """Daily returns of every combination: ``date`` then one column per index."""
    jobs.require_completed(job)
    summary = await repository.get_summary(session, job.id)
    if summary is None:
        raise Conflict("Returns are not available for this sweep.")
    indexed = await repository.all_returns(session, job.id)
    days = np.frombuffer(summary.dates, dtype="<i4").astype("datetime64[D]")[1:]
    return await anyio.to_thread.run_sync(_encode_returns, days, indexed, fmt)


def _encode_returns(
    days: np.ndarray[Any, Any], indexed: list[tuple[int, bytes]], fmt: str
) -> tuple[bytes, str]:
    import pandas as pd  # noqa: PLC0415 - only for this export, not on the API's import path

    columns = {str(i): np.frombuffer(b, dtype="<f8") for i, b in indexed}
    frame = pd.DataFrame({"date": days, **columns})
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue(), "application/vnd.apache.parquet"
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    text = frame.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return text.encode(), "text/csv"


async def submit_row_backtest(
    session: AsyncSession,
    *,
    user: User,
    job: Job,
    index: int,
    settings: Settings,
    quota: SubmissionQuota | None,
) -> dict[str, Any]:
    """Run row ``index`` as a normal backtest (counted like any submission): the base
    request with the row's params, validated by the backtest kind and submitted as a
    job of that kind. Returns what POST /v1/backtest returns."""
    row = await repository.get_row(session, job.id, index)
    if row is None:
        raise NotFound(f"Sweep {job.id} has no row {index}")
    body = grid.apply(job.config["base"], row.params)
    if job.name:
        body["name"] = f"{job.name} #{index}"[:200]
    config = await validate_backtest(body, settings, at="body")
    created = await jobs.submit(
        session,
        user=user,
        kind=BACKTEST_KIND,
        config=config,
        name=config.get("name"),
        quota=quota,
        settings=settings,
    )
    return RowBacktestCreated(
        task_id=created.id, status=created.status, created_at=created.created_at
    ).model_dump(mode="json")


async def chart(session: AsyncSession, *, job: Job) -> dict[str, Any]:
    """The walk-forward's stitched out-of-sample curve and benchmark."""
    jobs.require_completed(job)
    summary = await repository.get_summary(session, job.id)
    if summary is None or summary.chart is None:
        raise Conflict("This sweep has no walk_forward, so no out-of-sample curve.")
    curve = summary.chart
    bench = curve["benchmark"] or [None] * len(curve["dates"])
    return {
        "equity_curve": [
            {"date": d, "equity": e, "benchmark": b}
            for d, e, b in zip(curve["dates"], curve["equity"], bench, strict=True)
        ],
        "benchmark_symbol": job.config["base"].get("benchmark"),
    }
