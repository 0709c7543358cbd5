"""The screening language (``filter_criteria``): a strictly validated JSON description
of a custom strategy, turned into a :class:`~app.engine.strategies.base.Pipeline`.

Example::

    {"universe": ["AAPL", "MSFT"],
     "filters": [
         {"factor": "return", "window": 126, "op": ">", "value": 0},
         {"factor": "close", "op": ">", "other": {"factor": "sma", "window": 200}}],
     "rank_by": {"factor": "return", "window": 252}, "ascending": false, "top_n": 20,
     "weighting": "equal"}

Filters are ANDed; then the survivors are ranked by ``rank_by`` and the first
``top_n`` kept; then weighted (``equal`` or ``inverse_volatility``). Nothing is
evaluated as code: factor names and comparison operators are closed sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from app.engine.errors import InvalidInputError
from app.engine.strategies.base import (
    COMPARISONS,
    Pipeline,
    SelectStep,
    SelectTopN,
    SelectWhere,
    WeighInverseVolatility,
    WeighStep,
    weigh_equal,
)
from app.engine.strategies.factors import FACTOR_DOCS, MAX_WINDOW, Factor, min_window

FactorName = Literal[
    "close",
    "return",
    "sma",
    "ema",
    "volatility",
    "rsi",
    "avg_dollar_volume",
    "drawdown_from_high",
]
Op = Literal[">", ">=", "<", "<="]
Weighting = Literal["equal", "inverse_volatility"]
MAX_FILTERS = 20
MAX_TOP_N = 1000
DEFAULT_VOLATILITY_WINDOW = 63

_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class FactorRef(BaseModel):
    """A factor and its window (in sessions); ``close`` takes no window."""

    model_config = _CONFIG

    factor: FactorName = Field(
        description="; ".join(f"{k}: {v}" for k, v in FACTOR_DOCS.items())
    )
    window: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WINDOW,
        description=f"sessions, 1..{MAX_WINDOW} (volatility: 2..{MAX_WINDOW}); "
        "required for every factor except close",
    )

    @model_validator(mode="after")
    def _check_window(self) -> Self:
        lo = min_window(self.factor)
        if lo == 0 and self.window is not None:
            raise PydanticCustomError(
                "window", "close takes no window; remove 'window'"
            )
        if lo > 0 and self.window is None:
            raise PydanticCustomError(
                "window",
                f"{self.factor} needs a window: an integer {lo}..{MAX_WINDOW}",
            )
        if self.window is not None and self.window < lo:
            raise PydanticCustomError(
                "window",
                f"{self.factor} window must be between {lo} and {MAX_WINDOW}, "
                f"got {self.window}",
            )
        return self

    def to_factor(self) -> Factor:
        return Factor(self.factor, self.window)


class Filter(FactorRef):
    """``factor op value`` or ``factor op other`` (exactly one of the two)."""

    op: Op
    value: float | None = Field(default=None, description="a finite number")
    other: FactorRef | None = Field(
        default=None, description="a factor to compare with"
    )

    @model_validator(mode="after")
    def _check_rhs(self) -> Self:
        if (self.value is None) == (self.other is None):
            raise PydanticCustomError(
                "rhs",
                "give exactly one of 'value' (a number) or 'other' (a factor)",
            )
        return self


class FilterCriteria(BaseModel):
    """A custom strategy: filters (ANDed) → optional rank + top_n → weighting."""

    model_config = _CONFIG

    universe: list[str] | None = Field(
        default=None, min_length=1, description="symbols to screen (optional)"
    )
    filters: list[Filter] = Field(default_factory=list, max_length=MAX_FILTERS)
    rank_by: FactorRef | None = None
    ascending: bool = Field(default=False, description="rank smallest first")
    top_n: int | None = Field(default=None, ge=1, le=MAX_TOP_N)
    weighting: Weighting = "equal"
    volatility_window: int | None = Field(
        default=None,
        ge=2,
        le=MAX_WINDOW,
        description=f"inverse_volatility only; default {DEFAULT_VOLATILITY_WINDOW}",
    )

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        if (self.rank_by is None) != (self.top_n is None):
            raise PydanticCustomError(
                "rank", "give rank_by and top_n together (or neither)"
            )
        if (
            self.volatility_window is not None
            and self.weighting != "inverse_volatility"
        ):
            raise PydanticCustomError(
                "volatility_window",
                "volatility_window applies only to weighting 'inverse_volatility'",
            )
        if self.universe is not None:
            dup = sorted({s for s in self.universe if self.universe.count(s) > 1})
            if dup or any(not s.strip() for s in self.universe):
                raise PydanticCustomError(
                    "universe",
                    "universe must list distinct, non-empty symbols",
                )
        return self

    def factors(self) -> list[Factor]:
        """Every factor the screen evaluates (weighting volatility included)."""
        refs: list[FactorRef] = list(self.filters)
        refs += [f.other for f in self.filters if f.other is not None]
        if self.rank_by is not None:
            refs.append(self.rank_by)
        out = [r.to_factor() for r in refs]
        if self.weighting == "inverse_volatility":
            out.append(Factor("volatility", self.vol_window))
        return out

    @property
    def vol_window(self) -> int:
        return self.volatility_window or DEFAULT_VOLATILITY_WINDOW


# ------------------------------------------------------------------ validation
_NESTED: dict[str, type[BaseModel]] = {
    "filters": Filter,
    "other": FactorRef,
    "rank_by": FactorRef,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "factor": tuple(FACTOR_DOCS),
    "op": tuple(COMPARISONS),
    "weighting": ("equal", "inverse_volatility"),
}
_BOUNDS: dict[str, tuple[int, int]] = {
    "window": (1, MAX_WINDOW),
    "top_n": (1, MAX_TOP_N),
    "volatility_window": (2, MAX_WINDOW),
}
# Model-level rules are reported on the field they are about.
_CUSTOM_FIELD = {"window": "window", "volatility_window": "volatility_window",
                 "universe": "universe", "rank": "top_n"}  # fmt: skip


def _path(loc: tuple[int | str, ...]) -> str:
    out = "filter_criteria"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _allowed_fields(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = FilterCriteria
    for part in loc:
        if isinstance(part, str):
            model = _NESTED.get(part, model)
    return ", ".join(model.model_fields)


def _describe(err: Mapping[str, Any]) -> str:  # noqa: PLR0911 - a flat case table
    """One human message per pydantic error; always says what is allowed."""
    kind, loc, given = err["type"], tuple(err["loc"]), err.get("input")
    name = next((p for p in reversed(loc) if isinstance(p, str)), "filter_criteria")
    if kind == "extra_forbidden":
        return f"unknown field {name!r}; allowed: {_allowed_fields(loc[:-1])}"
    if kind == "missing":
        return f"required field missing; allowed fields: {_allowed_fields(loc[:-1])}"
    if kind == "literal_error" and name in _CHOICES:
        return f"unknown {name} {given!r}; allowed: {', '.join(_CHOICES[name])}"
    if name in _BOUNDS and kind != "custom":
        lo, hi = _BOUNDS[name]
        return f"must be an integer between {lo} and {hi}, got {given!r}"
    if name == "filters" and kind in ("too_long", "list_type"):
        return f"must be a list of at most {MAX_FILTERS} filters"
    if kind in ("finite_number", "float_type", "float_parsing"):
        return f"must be a finite number, got {given!r}"
    if kind == "model_type":
        return f"must be an object with fields: {_allowed_fields(loc)}"
    if name == "universe" and kind in ("too_short", "list_type", "string_type"):
        return "must be a non-empty list of symbol strings"
    if kind == "bool_type":
        return f"must be true or false, got {given!r}"
    return str(err["msg"])


def _field_of(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    if err["type"] in _CUSTOM_FIELD:
        loc = (*loc, _CUSTOM_FIELD[err["type"]])
    return _path(loc)


def parse_filter_criteria(obj: Mapping[str, Any]) -> FilterCriteria:
    """Validate a ``filter_criteria`` mapping (e.g. parsed JSON).

    Raises :class:`InvalidInputError` listing every problem as ``<path>: <message>``
    (paths like ``filter_criteria.filters[1].factor``); its ``field`` is the first
    problem's path.
    """
    if isinstance(obj, FilterCriteria):
        return obj
    if not isinstance(obj, Mapping):
        raise InvalidInputError(
            "filter_criteria must be an object with fields: "
            + ", ".join(FilterCriteria.model_fields),
            field="filter_criteria",
        )
    try:
        return FilterCriteria.model_validate(dict(obj))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = [f"{_field_of(e)}: {_describe(e)}" for e in errors]
        raise InvalidInputError(
            "; ".join(problems), field=_field_of(errors[0])
        ) from None


# -------------------------------------------------------------------- strategy
def build_screen(criteria: FilterCriteria) -> Pipeline:
    """The screen as a rebalancing :class:`Pipeline`.

    ``warmup_rows`` is the largest window used + 1 (1 when only ``close`` is used).
    ``criteria.universe`` is not applied here: the caller restricts the data.
    """
    steps: list[SelectStep] = []
    for f in criteria.filters:
        rhs = f.other.to_factor() if f.other is not None else f.value
        assert rhs is not None  # guaranteed by Filter._check_rhs
        steps.append(SelectWhere(f.to_factor(), f.op, rhs))
    if criteria.rank_by is not None and criteria.top_n is not None:
        rank = criteria.rank_by.to_factor()
        steps.append(SelectTopN(rank, criteria.top_n, ascending=criteria.ascending))
    weigh: WeighStep = weigh_equal
    if criteria.weighting == "inverse_volatility":
        weigh = WeighInverseVolatility(criteria.vol_window)
    warmup = max((f.warmup_rows for f in criteria.factors()), default=0)
    return Pipeline("screen", tuple(steps), weigh, warmup_rows=warmup)


__all__ = [
    "FactorRef",
    "Filter",
    "FilterCriteria",
    "build_screen",
    "parse_filter_criteria",
]
