"""Strategies: predefined ones by id, and the screening language (``filter_criteria``).

The simulator calls :func:`resolve_strategy` and then
``strategy.target_weights(data, rows)``; see :class:`Strategy` for the contract.
"""

from app.engine.strategies.base import (
    Pipeline,
    SelectTopN,
    SelectWhere,
    Strategy,
    WeighInverseVolatility,
    weigh_equal,
    weights_are_valid,
)
from app.engine.strategies.builtin import STRATEGIES, ParamSpec, StrategyDef
from app.engine.strategies.factors import FACTOR_DOCS, FACTOR_NAMES, MAX_WINDOW, Factor
from app.engine.strategies.registry import (
    DEFAULT_STRATEGY_ID,
    get_strategy_def,
    list_strategies,
    resolve_strategy,
    validate_params,
)
from app.engine.strategies.screen import (
    FactorRef,
    Filter,
    FilterCriteria,
    build_screen,
    parse_filter_criteria,
)

__all__ = [
    "DEFAULT_STRATEGY_ID",
    "FACTOR_DOCS",
    "FACTOR_NAMES",
    "MAX_WINDOW",
    "STRATEGIES",
    "Factor",
    "FactorRef",
    "Filter",
    "FilterCriteria",
    "ParamSpec",
    "Pipeline",
    "SelectTopN",
    "SelectWhere",
    "Strategy",
    "StrategyDef",
    "WeighInverseVolatility",
    "build_screen",
    "get_strategy_def",
    "list_strategies",
    "parse_filter_criteria",
    "resolve_strategy",
    "validate_params",
    "weigh_equal",
    "weights_are_valid",
]
