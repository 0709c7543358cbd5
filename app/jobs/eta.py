"""Phase-weighted progress and its ETA, for any job kind (pure: no I/O).

A kind that can predict its own cost hands the runner a plan: its phases in order,
each with a predicted duration in seconds (a backtest's come from
:mod:`app.backtests.cost`, calibrated on this machine). Conventions:

* **Pace** ``r`` = actual / predicted seconds of the work reported done,
  ``(elapsed + PRIOR) / (predicted_done + PRIOR)`` at the last report (a phase
  entered, a fraction reported), where ``PRIOR`` is ``PRIOR_SHARE`` of the predicted
  total: 1 at the start (the model's prediction), then more and more what this run
  has shown (a loaded machine, a cold cache).
* **ETA** = what is left of the current phase + the phases after it × ``r``. The
  current phase's length is its prediction × ``r``, blended, as it reports its own
  fraction ``f`` (a simulation's share of sessions done), with its own pace
  (elapsed in it / ``f``), weight ``f``; what is left of it is that length ×
  (1 - max(``f``, the share of it elapsed, at most ``SILENT_CAP``)): a phase that
  reports nothing (the analysis, saving) advances with time but never claims to be
  finished before it is; one that overruns is expected to last 1/``SILENT_CAP`` of
  its elapsed time.
* **Fraction** = elapsed / (elapsed + ETA): the share of the run's time done. With
  the prediction right it is exactly the phase-weighted sum (the predicted shares
  of the phases done + the current phase's share × ``f``); when a phase runs longer
  or shorter than predicted, its share is what it measures.
* **Monotonic**: the fraction shown never goes down (a late or out-of-order report,
  a phase entered twice, a plan that grows); it stays below 1 until the job is saved
  (the runner then sends 100 %).
* **Refined plan**: the kind may send new predictions for the phases not started
  yet once it knows more (``revise``; a backtest once its fills are known).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Clock = Callable[[], float]

#: a phase without internal reports advances by time up to this share of itself
SILENT_CAP = 0.9
#: the weight of the prediction against the observed pace, as a share of the total
PRIOR_SHARE = 0.2
#: floor of any phase's predicted seconds (a zero-cost phase still has a share)
MIN_PHASE_SECONDS = 1e-3
#: the fraction shown before the job is saved stays below 1
MAX_RUNNING_FRACTION = 0.999


@dataclass(frozen=True)
class Phase:
    """One step of a job and its predicted duration (seconds)."""

    name: str
    seconds: float


class PhaseProgress:
    """Where a running job is in its plan; fed by ``enter``/``advance``, read by
    ``fraction``/``eta_seconds`` (the runner's ticker reads it between reports)."""

    def __init__(self, phases: Sequence[Phase], *, clock: Clock = time.monotonic):
        if not phases:
            raise ValueError("a plan needs at least one phase")
        self.phases = tuple(
            Phase(p.name, max(float(p.seconds), MIN_PHASE_SECONDS)) for p in phases
        )
        self.total = sum(p.seconds for p in self.phases)
        self._before = [0.0]
        for p in self.phases:
            self._before.append(self._before[-1] + p.seconds)
        self.clock = clock
        self.started = self.phase_started = self.reported_at = clock()
        self.index = 0
        self.inner = 0.0  # the current phase's reported internal fraction
        self.shown = 0.0

    def revise(self, phases: Sequence[Phase]) -> None:
        """New predictions for the phases not started yet (the kind knows more, e.g.
        a backtest's fill count once simulated); those done or running keep theirs,
        so the pace observed so far stays comparable. The fraction shown stays
        monotonic (it may pause while a grown plan catches up)."""
        if not phases:
            return
        seconds = {p.name: max(float(p.seconds), MIN_PHASE_SECONDS) for p in phases}
        self.phases = tuple(
            Phase(p.name, seconds.get(p.name, p.seconds)) if i > self.index else p
            for i, p in enumerate(self.phases)
        )
        self.total = sum(p.seconds for p in self.phases)
        self._before = [0.0]
        for p in self.phases:
            self._before.append(self._before[-1] + p.seconds)

    @property
    def phase(self) -> str:
        return self.phases[self.index].name

    def enter(self, name: str) -> None:
        """The job starts phase ``name``: the earlier ones count as done. An unknown
        name, or one before the current phase, changes nothing (monotonic)."""
        for i, p in enumerate(self.phases):
            if p.name == name and i > self.index:
                self.index, self.inner = i, 0.0
                self.phase_started = self.reported_at = self.clock()
                return

    def advance(self, fraction: float) -> None:
        """The current phase reports its internal fraction (0..1)."""
        self.inner = max(self.inner, min(max(fraction, 0.0), 1.0))
        self.reported_at = self.clock()

    def _done_reported(self) -> float:
        """Predicted seconds of the work reported done (phases and fractions)."""
        return self._before[self.index] + self.phases[self.index].seconds * self.inner

    def ratio(self) -> float:
        """The pace: observed actual/predicted seconds at the last report, pulled
        towards 1 by the prior."""
        prior = PRIOR_SHARE * self.total
        elapsed = self.reported_at - self.started
        return (elapsed + prior) / (self._done_reported() + prior)

    def eta_seconds(self) -> float:
        """Seconds left (module docstring)."""
        now = self.clock()
        pace = self.ratio()
        current = self.phases[self.index].seconds * pace
        if self.inner > 0:
            own = (self.reported_at - self.phase_started) / self.inner
            current = self.inner * own + (1 - self.inner) * current
        # A phase past its expected length is expected to last a bit longer still.
        current = max(current, (now - self.phase_started) / SILENT_CAP)
        spent = min((now - self.phase_started) / max(current, 1e-9), SILENT_CAP)
        left = current * (1 - max(self.inner, spent))
        return left + (self.total - self._before[self.index + 1]) * pace

    def fraction(self) -> float:
        """The share of the run's time done, monotonic and below 1."""
        elapsed = self.clock() - self.started
        left = self.eta_seconds()
        raw = elapsed / (elapsed + left) if elapsed + left > 0 else 0.0
        self.shown = max(self.shown, min(raw, MAX_RUNNING_FRACTION))
        return self.shown
