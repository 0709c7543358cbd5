"""Read-only catalog: strategies, the screening language, symbols and datasets."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import anyio
from fastapi import APIRouter, Query

from app.accounts.deps import CurrentUser
from app.api.deps import SettingsDep
from app.api.schemas import error_responses
from app.catalog.schemas import (
    DatasetOut,
    FactorInfo,
    ScreeningLanguage,
    StrategyInfo,
    SymbolCatalog,
    SymbolInfoOut,
)
from app.data.access import dataset_for
from app.data.store import list_datasets, symbol_coverage
from app.engine.strategies import (
    FACTOR_NAMES,
    MAX_WINDOW,
    FilterCriteria,
    list_strategies,
)
from app.engine.strategies.base import COMPARISONS
from app.engine.strategies.factors import FACTOR_DOCS

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
    "`benchmark`.",
    response_model=SymbolCatalog,
    responses=error_responses(400, 401, 429),
)
async def get_symbols(
    _: CurrentUser,
    settings: SettingsDep,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
) -> SymbolCatalog:
    data = await dataset_for(settings, dataset)
    coverage = await anyio.to_thread.run_sync(symbol_coverage, data)
    return SymbolCatalog(
        dataset=data.name,
        first_date=data.dates[0].astype("datetime64[D]").item(),
        last_date=data.dates[-1].astype("datetime64[D]").item(),
        benchmarks=list(data.benchmarks),
        symbols=[SymbolInfoOut.model_validate(asdict(c)) for c in coverage],
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
    infos = await anyio.to_thread.run_sync(
        list_datasets, settings.resolved_datasets_dir
    )
    return [DatasetOut.model_validate(asdict(i)) for i in infos]
