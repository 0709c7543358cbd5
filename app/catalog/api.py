"""Read-only catalog: strategies, the screening language, symbols and datasets."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query

from app.accounts.deps import CurrentUser
from app.api.deps import SettingsDep
from app.api.schemas import error_responses
from app.catalog.schemas import (
    DatasetCoverage,
    DatasetOut,
    FactorInfo,
    RequestLimits,
    ScreeningLanguage,
    StrategyInfo,
    SymbolCatalog,
    SymbolInfoOut,
    YearCoverageOut,
)
from app.core.errors import NotFound, ValidationFailed
from app.data.access import catalog_for, list_datasets
from app.data.membership import INDEX_NAME
from app.engine.config import request_limits
from app.engine.strategies import (
    FACTOR_NAMES,
    MAX_WINDOW,
    FilterCriteria,
    list_strategies,
)
from app.engine.strategies.base import COMPARISONS
from app.engine.strategies.factors import FACTOR_DOCS
from app.engine.universe import (
    GRADE_LOW_FROM,
    GRADE_MODERATE_FROM,
    survivorship_grade,
)

router = APIRouter(tags=["catalog"])


@router.get(
    "/strategies",
    summary="Predefined strategies",
    description="Ids to use as `strategy_id`, with each parameter's default and bounds "
    "(override them in `strategy_params`).",
    response_model=list[StrategyInfo],
    responses=error_responses(401, 429),
)
async def get_strategies(_: CurrentUser) -> list[StrategyInfo]:
    return [StrategyInfo.model_validate(s) for s in list_strategies()]


@router.get(
    "/strategies/screening",
    summary="The screening language of `filter_criteria`",
    description="Factors, operators and weightings accepted in `filter_criteria`, "
    "and its JSON schema.",
    response_model=ScreeningLanguage,
    responses=error_responses(401, 429),
)
async def get_screening_language(_: CurrentUser) -> ScreeningLanguage:
    return ScreeningLanguage(
        factors=[
            FactorInfo(name=n, description=FACTOR_DOCS[n], needs_window=n != "close")
            for n in FACTOR_NAMES
        ],
        operators=list(COMPARISONS),
        weightings=["equal", "inverse_volatility"],
        max_window=MAX_WINDOW,
        json_schema=FilterCriteria.model_json_schema(),
    )


@router.get(
    "/symbols",
    summary="Symbols, their coverage and the benchmark list",
    description="Every symbol of a dataset (default: the bundled S&P 500 sample) with "
    "its first and last trading day; `benchmarks` lists the symbols allowed as "
    "`benchmark`; `limits` are the bounds of a POST /v1/backtest body.",
    response_model=SymbolCatalog,
    responses=error_responses(400, 401, 429),
)
async def get_symbols(
    _: CurrentUser,
    settings: SettingsDep,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
) -> SymbolCatalog:
    catalog = await catalog_for(settings, dataset)
    return SymbolCatalog(
        dataset=catalog.name,
        first_date=catalog.first_date,
        last_date=catalog.last_date,
        benchmarks=list(catalog.skeleton.benchmarks),
        symbols=[SymbolInfoOut.model_validate(asdict(c)) for c in catalog.symbols],
        limits=RequestLimits.model_validate(request_limits()),
    )


@router.get(
    "/datasets",
    summary="Available datasets",
    description="The bundled dataset and those imported with "
    "`python -m app.cli data import`.",
    response_model=list[DatasetOut],
    responses=error_responses(401, 429),
)
async def get_datasets(_: CurrentUser, settings: SettingsDep) -> list[DatasetOut]:
    infos = await anyio.to_thread.run_sync(list_datasets, settings)
    return [DatasetOut.model_validate(asdict(i)) for i in infos]


@router.get(
    "/datasets/{name}/coverage",
    summary="How much of the S&P 500 a dataset covers, per year",
    description="Per calendar year: the index's member-days (one per member per "
    "session), those on which the member has a price in the dataset, their share "
    "and the survivorship-bias grade of that share (`low` from "
    f"{GRADE_LOW_FROM:.0%}, `moderate` from {GRADE_MODERATE_FROM:.0%}, `high` "
    "below). Imported datasets have no membership data: `membership_known` is "
    "false, `years` empty and `reason` says why.",
    response_model=DatasetCoverage,
    responses=error_responses(401, 404),
)
async def get_dataset_coverage(
    _: CurrentUser,
    settings: SettingsDep,
    name: Annotated[str, Path(max_length=64)],
) -> DatasetCoverage:
    try:
        catalog = await catalog_for(settings, name)
    except ValidationFailed as exc:
        raise NotFound(exc.message) from exc
    known = catalog.years is not None
    years = catalog.years or ()
    return DatasetCoverage(
        dataset=catalog.name,
        index=INDEX_NAME if known else None,
        membership_known=known,
        reason=None if known else "imported dataset: no index membership is known",
        grade_low_from=GRADE_LOW_FROM,
        grade_moderate_from=GRADE_MODERATE_FROM,
        years=[
            YearCoverageOut(**asdict(y), survivorship_bias=survivorship_grade(y.share))
            for y in years
        ],
    )
