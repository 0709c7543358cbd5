"""The predicted cost of a backtest, phase by phase: the plan its progress follows.

Each phase's seconds are a linear model of the run's size, ``t = c · x`` with
``x = workload.features()`` (:class:`Workload`: a constant, symbols × sessions,
symbols × decisions, names held × decisions, symbols × sessions read, sessions).
Once the simulation is done the run knows what it made (:class:`Outcome`: fills,
FIFO lots) and the phases after it, the analysis and saving (most of a large run's
time: every lot and position is a row), are predicted again from that
(``refined_plan``), and saving once more from the rows it will write
(``saving_plan``: lots, positions, sessions). The coefficients are fitted by
non-negative least squares on timed runs of the bundled dataset on this machine,
saving timed against PostgreSQL (``scripts/calibrate_progress.py``), and shipped in
``progress_costs.json`` next to this module; the job runner turns the plan into a
phase-weighted fraction and an ETA refined by the run's own pace
(:mod:`app.jobs.eta`).

Phases, in order: ``loading`` (the dataset, process-cached), ``window`` (checks and
the data window), ``factors`` (the strategy's target weights), ``simulation``,
``ledger`` (FIFO lots), ``metrics`` (benchmarks and statistics), ``analysis``
(coverage, positions, analysis, stored results) and ``saving`` (one transaction).
Without a calibration file every phase weighs the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from app.engine.backtest import BacktestResult, validate_config
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.schedule import decision_rows
from app.engine.strategies import (
    get_strategy_def,
    parse_filter_criteria,
    resolve_strategy,
    validate_params,
)
from app.jobs.eta import Phase

PHASES = (
    "loading",
    "window",
    "factors",
    "simulation",
    "ledger",
    "metrics",
    "analysis",
    "saving",
)
FEATURES = (
    "constant",
    "symbol_sessions",
    "symbol_decisions",
    "held_decisions",
    "symbol_reads",
    "sessions",
)
#: once simulated, the phases after it are predicted again from what the run made
REFINED_PHASES = ("analysis", "saving")
REFINED_FEATURES = ("constant", "fills", "lots", "sessions", "symbol_sessions")
#: once the stored results are built, saving is predicted from the rows it writes
SAVING_FEATURES = ("constant", "lots", "positions", "sessions")
COSTS_FILE = Path(__file__).with_name("progress_costs.json")
# Without a calibration file every phase weighs the same (an even split of 1 s).
_FALLBACK = {
    phase: [1.0 / len(PHASES)] + [0.0] * (len(FEATURES) - 1) for phase in PHASES
}


@dataclass(frozen=True)
class Workload:
    """The size of one backtest: ``symbols`` in its universe, ``held`` (at most
    the strategy's ``top_n``: what drives fills, trades and positions), ``sessions``
    simulated, ``decisions`` (rebalance rows), ``reads`` (sessions of the data
    window, the strategy's warm-up included)."""

    symbols: int
    held: int
    sessions: int
    decisions: int
    reads: int

    def features(self) -> list[float]:
        """The model's inputs, scaled to about 1 for a large run (500 × 10 y)."""
        s = self.symbols
        return [
            1.0,
            s * self.sessions / 1e6,
            s * self.decisions / 1e5,
            self.held * self.decisions / 1e5,
            s * self.reads / 1e6,
            self.sessions / 1e3,
        ]


@dataclass(frozen=True)
class Outcome:
    """What a simulated run made: ``fills`` and FIFO ``lots`` (the rows the
    analysis reads and saving writes), with its ``sessions`` and ``symbols``."""

    fills: int
    lots: int
    sessions: int
    symbols: int

    def features(self) -> list[float]:
        return [
            1.0,
            self.fills / 1e4,
            self.lots / 1e4,
            self.sessions / 1e3,
            self.symbols * self.sessions / 1e6,
        ]


def outcome(result: BacktestResult) -> Outcome:
    return Outcome(
        fills=len(result.fills),
        lots=len(result.trades),
        sessions=len(result.dates),
        symbols=len(result.symbols),
    )


def workload(config: BacktestConfig, data: MarketData) -> Workload:
    """The workload of ``config`` on ``data`` (raises what the engine would raise on
    a bad range, so call it where the run's own errors are handled)."""
    start_row, end_row = validate_config(config, data)
    strategy = resolve_strategy(
        config.strategy_id, config.strategy_params, config.filter_criteria
    ) if config.allocation is None else None  # fmt: skip
    warmup = strategy.warmup_rows if strategy is not None else 0
    if config.allocation is not None:
        symbols = len(config.allocation)
    else:
        screen = None
        if config.filter_criteria is not None:
            screen = parse_filter_criteria(config.filter_criteria).universe
        symbols = len(screen or config.symbols or data.stocks)
    rebalances = (strategy is None or strategy.rebalances) and (
        config.rebalancing != "never"
    )
    decisions = decision_rows(
        data.dates,
        start_row=start_row,
        end_row=end_row,
        rebalancing=config.rebalancing,
        rebalances=rebalances,
    )
    lo = max(0, start_row - warmup - 1)
    top_n = _top_n(config)
    return Workload(
        symbols=symbols,
        held=min(symbols, top_n) if top_n else symbols,
        sessions=end_row - start_row + 1,
        decisions=len(decisions),
        reads=end_row - lo + 1,
    )


def _top_n(config: BacktestConfig) -> int | None:
    """The strategy's ``top_n`` (a screen's or a predefined strategy's), if any."""
    if config.allocation is not None:
        return None
    if config.filter_criteria is not None:
        top = config.filter_criteria.get("top_n")
        return int(top) if isinstance(top, int) else None
    if config.strategy_id is None:
        return None
    params = validate_params(
        get_strategy_def(config.strategy_id), config.strategy_params
    )
    return params.get("top_n")


@cache
def _calibration(path: Path = COSTS_FILE) -> dict[str, Any]:
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return raw


def coefficients(key: str = "phases") -> dict[str, list[float]]:
    """Per phase, the fitted coefficients: the calibration file's ``phases`` (from
    the workload) or ``refined`` (from the outcome, :data:`REFINED_PHASES`)."""
    fitted = _calibration().get(key, {})
    names = PHASES if key == "phases" else REFINED_PHASES
    return {p: [float(c) for c in fitted.get(p, _FALLBACK[p])] for p in names}


def predict(
    work: Workload, coeffs: dict[str, list[float]] | None = None
) -> dict[str, float]:
    """Predicted seconds of each phase of ``work``."""
    coeffs = coefficients() if coeffs is None else coeffs
    x = np.asarray(work.features())
    return {p: max(float(np.dot(coeffs[p], x)), 0.0) for p in PHASES}


def predict_refined(
    made: Outcome, coeffs: dict[str, list[float]] | None = None
) -> dict[str, float]:
    """Predicted seconds of the phases after the simulation, from its outcome."""
    coeffs = coefficients("refined") if coeffs is None else coeffs
    x = np.asarray(made.features())
    return {p: max(float(np.dot(coeffs[p][: x.size], x)), 0.0) for p in REFINED_PHASES}


def plan(work: Workload) -> list[Phase]:
    """The phases of ``work`` with their predicted seconds, for the job runner."""
    return [Phase(name, seconds) for name, seconds in predict(work).items()]


def saving_features(lots: int, positions: int, sessions: int) -> list[float]:
    return [1.0, lots / 1e4, positions / 1e4, sessions / 1e3]


def saving_plan(lots: int, positions: int, sessions: int) -> list[Phase]:
    """Saving predicted from the rows it writes (lots, positions; the series and
    stored results grow with the sessions)."""
    fitted = _calibration().get("saving")
    if not fitted:
        return []
    x = saving_features(lots, positions, sessions)
    return [Phase("saving", max(float(np.dot(fitted, x)), 0.0))]


def refined_plan(made: Outcome) -> list[Phase]:
    """New predictions for the phases after the simulation (the runner keeps the
    others)."""
    return [Phase(name, s) for name, s in predict_refined(made).items()]


def fit(features: np.ndarray, seconds: np.ndarray) -> list[float]:
    """Non-negative least squares of ``seconds ≈ features @ c`` (the calibration's
    fit), each run weighted by 1/its time so short runs count as much as long
    ones (the error that matters is relative)."""
    from scipy.optimize import nnls  # noqa: PLC0415 - calibration only

    weight = 1.0 / np.maximum(seconds, 1e-3)
    coeffs, _ = nnls(features * weight[:, None], seconds * weight)
    return [float(c) for c in coeffs]
