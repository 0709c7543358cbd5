"""The phase-weighted progress model (app.jobs.eta), the backtest cost model's fit
(app.backtests.cost) and the runner's reporter (frames never go back, the ticker
re-sends), with a fake clock: no timing assertions."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.backtests import cost
from app.core.config import Settings
from app.jobs import eta, runner
from app.jobs.eta import Phase, PhaseProgress
from app.jobs.progress import InMemoryBus


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


PLAN = [
    Phase("load", 1.0),
    Phase("sim", 6.0),
    Phase("analysis", 2.0),
    Phase("save", 1.0),
]


def test_with_a_right_prediction_fraction_is_the_phase_weighted_sum() -> None:
    clock = Clock()
    model = PhaseProgress(PLAN, clock=clock)
    clock.now += 1.0  # load took its predicted 1 s
    model.enter("sim")
    clock.now += 3.0
    model.advance(0.5)  # half of sim in half its predicted 6 s
    # load done (1 of 10) + half of sim (3 of 10)
    assert model.fraction() == pytest.approx(0.4)
    assert model.eta_seconds() == pytest.approx(6.0)
    clock.now += 3.0
    model.enter("analysis")
    clock.now += 2.0
    model.enter("save")
    assert model.fraction() == pytest.approx(0.9)


def test_a_silent_phase_moves_with_time_but_stops_short_of_its_end() -> None:
    clock = Clock()
    model = PhaseProgress(PLAN, clock=clock)
    clock.now += 7.0  # the first two phases took what was predicted: pace 1
    model.enter("analysis")
    clock.now += 1.0  # half its predicted 2 s
    assert model.fraction() == pytest.approx(0.8)
    eta_then = model.eta_seconds()
    assert eta_then == pytest.approx(2.0)
    clock.now += 60.0  # far over: it does not claim to be done
    assert model.fraction() < 0.9  # the next phase's start is not claimed
    assert model.eta_seconds() > eta_then  # a stalled phase is expected to go on


def test_eta_follows_the_observed_pace() -> None:
    clock = Clock()
    model = PhaseProgress(PLAN, clock=clock)
    assert model.eta_seconds() == pytest.approx(10.0)  # the prediction
    # The run goes twice as slowly as predicted: 1 s of load took 2 s, sim too.
    clock.now += 2.0
    model.enter("sim")
    clock.now += 9.6
    model.advance(0.8)  # 4.8 of its predicted 6 s done in 9.6 s
    prior = eta.PRIOR_SHARE * 10.0
    assert model.ratio() == pytest.approx((11.6 + prior) / (5.8 + prior))
    # between the plan's 4.2 s left and the pace's 8.4 s, nearer the pace
    assert 4.2 * 1.5 < model.eta_seconds() < 8.4
    assert model.fraction() == pytest.approx(11.6 / (11.6 + model.eta_seconds()))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["enter", "advance", "wait"]),
            st.sampled_from([p.name for p in PLAN] + ["unknown"]),
            st.floats(min_value=-0.5, max_value=1.5),
        ),
        max_size=40,
    )
)
def test_fraction_never_decreases_and_stays_below_one(
    steps: list[tuple[str, str, float]],
) -> None:
    clock = Clock()
    model = PhaseProgress(PLAN, clock=clock)
    last = model.fraction()
    for op, name, value in steps:
        if op == "enter":
            model.enter(name)
        elif op == "advance":
            model.advance(value)
        else:
            clock.now += abs(value) * 3
        now = model.fraction()
        assert last <= now < 1.0
        assert model.eta_seconds() >= 0.0
        last = now


def test_fit_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(30), rng.uniform(0.01, 2, (30, 3))])
    truth = np.array([0.05, 0.8, 0.0, 0.3])
    c = cost.fit(x, x @ truth)
    assert c == pytest.approx(truth.tolist(), abs=1e-6)
    # negative coefficients are not allowed: a phase never costs less than nothing
    assert min(cost.fit(x, x @ np.array([0.5, -0.2, 0.1, 0.1]) + 1.0)) >= 0.0


def test_shipped_calibration_predicts_its_own_runs_within_a_loose_factor() -> None:
    raw = json.loads(cost.COSTS_FILE.read_text())
    assert raw["features"] == list(cost.FEATURES)
    assert set(raw["phases"]) == set(cost.PHASES)
    runs = raw["runs"]
    assert len(runs) >= 20
    ratios = []
    for run in runs:
        predicted = sum(cost.predict(cost.Workload(**run["workload"])).values())
        measured = sum(run["seconds"].values())
        ratios.append(predicted / measured)
    # The typical run within a factor of 2 (the ETA's pace correction does the rest)
    assert 0.5 <= float(np.median(ratios)) <= 2.0
    assert sum(0.25 <= r <= 4.0 for r in ratios) >= 0.8 * len(ratios)
    # Saving (most of a large run) once its rows are known: closer.
    saving = []
    for run in runs:
        made = run["outcome"]
        (plan,) = cost.saving_plan(made["lots"], run["positions"], made["sessions"])
        saving.append(plan.seconds / run["seconds"]["saving"])
    assert 0.67 <= float(np.median(saving)) <= 1.5
    assert sum(0.5 <= r <= 2.0 for r in saving) >= 0.7 * len(saving)


def test_a_revised_plan_keeps_the_phases_done_and_the_fraction_monotonic() -> None:
    clock = Clock()
    model = PhaseProgress(PLAN, clock=clock)
    clock.now += 1.0
    model.enter("sim")
    clock.now += 6.0
    model.advance(1.0)
    before = model.fraction()
    assert before == pytest.approx(0.7)
    model.revise([Phase("load", 50.0), Phase("analysis", 2.0), Phase("save", 31.0)])
    assert [p.seconds for p in model.phases] == [1.0, 6.0, 2.0, 31.0]  # load was done
    assert model.total == pytest.approx(40.0)
    assert model.fraction() == before  # the grown plan pauses the bar, never lowers it
    assert model.eta_seconds() > 31.0


class _RecordingBus(InMemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[dict[str, Any]] = []

    def publish(self, task_id: str, message: dict[str, Any]) -> None:
        self.frames.append(message)


class _NoDb:
    """The reporter's heartbeat target: the row is always still ours."""

    def run(self, fn: Any) -> bool:
        return True


def _reporter(bus: _RecordingBus) -> runner._Reporter:
    settings = Settings(environment="test", progress_interval_seconds=0)
    return runner._Reporter(
        _NoDb(),  # type: ignore[arg-type]
        runner._BestEffortBus(bus),
        settings,
        uuid.uuid4(),
        "token",
    )


def test_reporter_frames_never_go_back_and_name_the_phase() -> None:
    bus = _RecordingBus()
    reporter = _reporter(bus)
    reporter.plan(PLAN)
    reporter.phase("sim")
    for f in (0.1, 0.5, 0.4, 0.9):  # 0.4: a late report must not pull it back
        reporter.progress(f, None, 0)
    reporter.phase("analysis")
    reporter.phase("sim")  # out of order: ignored by the model
    reporter.progress(0.2, None, 0)
    reporter.phase("save")
    progress = [f["progress"] for f in bus.frames]
    assert progress == sorted(progress)
    assert bus.frames[-1]["phase"] == "save"
    assert all(f["eta_seconds"] is not None for f in bus.frames[1:])
    assert max(progress) < 100.0  # only the completion frame says 100


def test_reporter_without_plan_keeps_the_kinds_fraction_monotonic() -> None:
    bus = _RecordingBus()
    reporter = _reporter(bus)
    for f in (0.2, 0.1, 0.6):
        reporter.progress(f, None, 0)
    assert [f["progress"] for f in bus.frames] == [20.0, 20.0, 60.0]
    assert all(f["phase"] is None for f in bus.frames)  # a kind without a plan


def test_ticker_resends_only_when_quiet() -> None:
    bus = _RecordingBus()
    reporter = _reporter(bus)
    reporter.plan(PLAN)
    sent = len(bus.frames)
    reporter.tick()  # just published: nothing
    assert len(bus.frames) == sent
    reporter.last_publish -= runner.TICK_SECONDS
    reporter.tick()
    assert len(bus.frames) == sent + 1
    assert bus.frames[-1]["phase"] == "load"
    assert runner.TICK_SECONDS + runner.PULSE_SECONDS < 1.0
