"""Choosing a strategy: predefined ones by id (with validated parameters) or a screen.

This is the entry point the backtest runner calls; every invalid choice raises
:class:`InvalidInputError` naming the offending field and listing what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.engine.errors import InvalidInputError
from app.engine.strategies.base import Strategy
from app.engine.strategies.builtin import STRATEGIES, ParamSpec, StrategyDef
from app.engine.strategies.screen import build_screen, parse_filter_criteria

DEFAULT_STRATEGY_ID = 1
_BY_ID: dict[int, StrategyDef] = {s.id: s for s in STRATEGIES}


def list_strategies() -> list[dict[str, Any]]:
    """The predefined strategies, JSON-ready: ``[{id, name, description,
    parameters: [{name, type, default, min, max, description}]}]`` ordered by id."""
    return [
        {
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "parameters": [p.to_dict() for p in s.params],
        }
        for s in STRATEGIES
    ]


def get_strategy_def(strategy_id: int) -> StrategyDef:
    """The definition with this id; raises listing the valid ids and names."""
    found = (
        _BY_ID.get(strategy_id)
        if isinstance(strategy_id, int) and not isinstance(strategy_id, bool)
        else None
    )
    if found is None:
        valid = ", ".join(f"{s.id} ({s.name})" for s in STRATEGIES)
        raise InvalidInputError(
            f"unknown strategy_id {strategy_id!r}; valid ids: {valid}",
            field="strategy_id",
        )
    return found


def _check_value(spec: ParamSpec, value: Any) -> int:
    field = f"strategy_params.{spec.name}"
    allowed = f"an integer between {spec.min} and {spec.max}"
    integral_float = isinstance(value, float) and value.is_integer()
    if isinstance(value, bool) or not (isinstance(value, int) or integral_float):
        raise InvalidInputError(
            f"{spec.name} must be {allowed}, got {value!r}", field=field
        )
    number = int(value)
    if not spec.min <= number <= spec.max:
        raise InvalidInputError(
            f"{spec.name} must be {allowed}, got {number}", field=field
        )
    return number


def validate_params(
    definition: StrategyDef, params: Mapping[str, Any] | None
) -> dict[str, int]:
    """``params`` merged over the defaults, each checked against its :class:`ParamSpec`.

    Raises on unknown names (listing the accepted ones), non-integers and values out
    of bounds (giving the range), with field ``strategy_params.<name>``.
    """
    given = dict(params or {})
    specs = {p.name: p for p in definition.params}
    for name in given:
        if name not in specs:
            accepted = ", ".join(specs) or "none"
            raise InvalidInputError(
                f"unknown parameter {name!r} for strategy {definition.id} "
                f"({definition.name}); accepted: {accepted}",
                field=f"strategy_params.{name}",
            )
    return {
        name: _check_value(spec, given[name]) if name in given else spec.default
        for name, spec in specs.items()
    }


def resolve_strategy(
    strategy_id: int | None,
    params: Mapping[str, Any] | None,
    filter_criteria: Mapping[str, Any] | None,
) -> Strategy:
    """The strategy a backtest asks for.

    Neither ``strategy_id`` nor ``filter_criteria`` → equal-weight (id 1). Both →
    error. ``params`` apply to a predefined strategy only.
    """
    if strategy_id is not None and filter_criteria is not None:
        raise InvalidInputError(
            "give either strategy_id or filter_criteria, not both", field="strategy_id"
        )
    if filter_criteria is not None:
        if params:
            raise InvalidInputError(
                "strategy_params apply only to a predefined strategy (strategy_id); "
                "a screen takes its settings inside filter_criteria",
                field="strategy_params",
            )
        return build_screen(parse_filter_criteria(filter_criteria))
    definition = get_strategy_def(
        DEFAULT_STRATEGY_ID if strategy_id is None else strategy_id
    )
    return definition.build(validate_params(definition, params))
