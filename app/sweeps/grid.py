"""A sweep's grid: allowed keys, expansion, order, and how a combination becomes a
backtest request.

* A grid maps a **dotted path into the base request** to a list of values or a range
  ``{"start": 5, "stop": 50, "step": 5}`` (``stop`` inclusive). Paths:
  ``strategy_params.<name>`` (any parameter of the base's strategy),
  ``filter_criteria.top_n``, ``filter_criteria.weighting`` (a screen's), and
  ``rebalancing``, ``execution``, ``commission``, ``slippage``.
* Combinations are the Cartesian product **in grid order, the last key varying
  fastest** (``itertools.product``). Invalid ones are dropped; a combination's
  ``index`` is its position among the valid ones (0-based, no gaps).
* Which combinations are valid is decided once, at submission, and stored as a bit
  per raw product position (``valid``, packed and base64-encoded: 50,000
  combinations take 8 kB), so the worker never re-validates.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from app.engine.config import AllocationBenchmark, BacktestConfig, CashFlowPlan

SCALAR_KEYS = ("rebalancing", "execution", "commission", "slippage")
SCREEN_KEYS = ("filter_criteria.top_n", "filter_criteria.weighting")
PARAMS_PREFIX = "strategy_params."
MAX_VALUES_PER_KEY = 1000
# Range values are rounded to this many decimals: 0.1 + 2 * 0.05 must be 0.2.
_RANGE_DECIMALS = 12


def expand_values(spec: Any) -> list[Any]:
    """A list as given, or a range ``{start, stop, step}`` with ``stop`` inclusive
    (integers stay integers). Raises ValueError with a message for the user."""
    if isinstance(spec, list):
        values = list(spec)
    elif isinstance(spec, Mapping):
        values = _range(spec)
    else:
        raise ValueError("must be a list of values or {start, stop, step}")
    if not values:
        raise ValueError("must not be empty")
    if len(values) > MAX_VALUES_PER_KEY:
        raise ValueError(f"at most {MAX_VALUES_PER_KEY} values per key")
    if any(isinstance(v, list | dict) or v is None for v in values):
        raise ValueError("values must be numbers or strings")
    if len({repr(v) for v in values}) != len(values):
        raise ValueError("contains duplicate values")
    return values


def _range(spec: Mapping[str, Any]) -> list[Any]:
    if set(spec) != {"start", "stop", "step"}:
        raise ValueError("a range has exactly the keys start, stop and step")
    start, stop, step = spec["start"], spec["stop"], spec["step"]
    numbers = (start, stop, step)
    if any(isinstance(x, bool) or not isinstance(x, int | float) for x in numbers):
        raise ValueError("start, stop and step must be numbers")
    if not all(math.isfinite(x) for x in numbers) or step <= 0 or stop < start:
        raise ValueError("needs step > 0 and start <= stop")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_VALUES_PER_KEY:
        raise ValueError(f"at most {MAX_VALUES_PER_KEY} values per key")
    if all(isinstance(x, int) for x in numbers):
        return [start + i * step for i in range(count)]
    return [round(start + i * step, _RANGE_DECIMALS) for i in range(count)]


def key_error(key: str, base: Mapping[str, Any], param_names: Sequence[str]) -> str:
    """Why ``key`` may not be swept for ``base`` ("" when it may)."""
    reason = ""
    if key in SCREEN_KEYS and base.get("filter_criteria") is None:
        reason = f"{key} needs a base with filter_criteria (a custom screen)"
    elif key.startswith(PARAMS_PREFIX):
        name = key.removeprefix(PARAMS_PREFIX)
        if base.get("strategy_id") is None:
            reason = f"{key} needs a base with a strategy_id"
        elif name not in param_names:
            listed = ", ".join(param_names) or "none"
            reason = f"the strategy has no parameter {name!r} (parameters: {listed})"
    elif key not in SCALAR_KEYS and key not in SCREEN_KEYS:
        paths = ", ".join([*SCALAR_KEYS, *SCREEN_KEYS, PARAMS_PREFIX + "<name>"])
        reason = f"cannot sweep {key!r}; allowed paths: {paths}"
    return reason


def apply(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The backtest request ``base`` with ``params`` (dotted paths) set; ``base`` is
    not changed."""
    body = dict(base)
    for key, value in params.items():
        head, _, name = key.partition(".")
        if name:
            nested = dict(body.get(head) or {})
            nested[name] = value
            body[head] = nested
        else:
            body[key] = value
    return body


def size(grid: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(v) for v in grid.values())


def product(grid: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of ``grid``, the last key varying fastest."""
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def pack(valid: Sequence[bool]) -> str:
    return base64.b64encode(
        np.packbits(np.asarray(valid, dtype=bool)).tobytes()
    ).decode()


def unpack(packed: str, n: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    bits = np.frombuffer(base64.b64decode(packed), dtype=np.uint8)
    return np.unpackbits(bits, count=n).astype(bool)


def stored(grid: Mapping[str, list[Any]]) -> list[list[Any]]:
    """The grid as the job stores it: ``[[key, values], ...]``. A list, because
    PostgreSQL's JSONB does not keep an object's key order, and the order of the
    keys is the order of the combinations."""
    return [[key, values] for key, values in grid.items()]


def of_config(config: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The expanded grid of a stored sweep config, in grid order."""
    return {key: values for key, values in config["grid"]}


def valid_combinations(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The valid combinations of a stored sweep config, in index order."""
    grid = of_config(config)
    mask = unpack(config["valid"], size(grid))
    return [p for p, ok in zip(product(grid), mask, strict=True) if ok]


_RENAMED = {"commission": "commission_rate", "slippage": "slippage_rate"}
# Request fields the engine never sees (labels and notifications), whatever else the
# request gains: only BacktestConfig's own fields are passed on.
_ENGINE_FIELDS = frozenset(f.name for f in dataclasses.fields(BacktestConfig))


def engine_config(request: Mapping[str, Any]) -> BacktestConfig:
    """The engine's config of a **validated** backtest request (JSON form, as the
    backtest kind's validator returns it): the API names mapped to the engine's, as
    ``BacktestRequest.to_config`` does (a unit test holds the two equal)."""
    fields: dict[str, Any] = {}
    for key, value in request.items():
        name = _RENAMED.get(key, key)
        if name in _ENGINE_FIELDS:
            fields[name] = value
    fields["start_date"] = dt.date.fromisoformat(str(request["start_date"]))
    fields["end_date"] = dt.date.fromisoformat(str(request["end_date"]))
    symbols = request.get("symbols")
    fields["symbols"] = tuple(symbols) if symbols else None
    fields["strategy_params"] = dict(request.get("strategy_params") or {})
    allocation = request.get("allocation")
    fields["allocation"] = tuple(allocation.items()) if allocation else None
    flows = request.get("cash_flows")
    fields["cash_flows"] = None if flows is None else CashFlowPlan(
        amount=float(flows["amount"]),
        frequency=flows.get("frequency") or "monthly",
        start_date=_day(flows.get("start_date")),
        end_date=_day(flows.get("end_date")),
    )  # fmt: skip
    fields["benchmarks"] = tuple(
        entry if isinstance(entry, str) else AllocationBenchmark(
            name=entry["name"],
            allocation=tuple(entry["allocation"].items()),
            rebalancing=entry.get("rebalancing") or "monthly",
            rebalance_band=entry.get("rebalance_band"),
        )
        for entry in request.get("benchmarks") or ()
    )  # fmt: skip
    if fields.get("reinvest_dividends") is not None:
        fields["reinvest_dividends"] = bool(
            fields["reinvest_dividends"] and request.get("dividends", True)
        )
    return BacktestConfig(**fields)


def _day(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value))
