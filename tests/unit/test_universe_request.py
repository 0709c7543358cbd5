"""The request's ``universe`` and its default (app/backtests/schemas.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.backtests.schemas import BacktestRequest

BASE: dict[str, Any] = {"start_date": "2015-01-01", "end_date": "2019-12-31"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "sp500_pit"),
        ({"strategy_id": 2}, "sp500_pit"),
        ({"dataset": "sp500"}, "sp500_pit"),
        ({"filter_criteria": {"top_n": 5}}, "sp500_pit"),
        ({"symbols": ["AAPL", "MSFT"]}, "all"),
        ({"filter_criteria": {"universe": ["AAPL"], "top_n": 1}}, "all"),
        ({"dataset": "mine"}, "all"),
        ({"symbols": ["AAPL"], "universe": "sp500_pit"}, "sp500_pit"),
        ({"universe": "all"}, "all"),
    ],
)
def test_universe_default_is_point_in_time_only_for_whole_bundled_runs(
    extra: dict[str, Any], expected: str
) -> None:
    request = BacktestRequest.model_validate({**BASE, **extra})
    assert request.universe == expected
    assert request.to_config().universe == expected
    # Stored resolved, so a job's config says what ran.
    assert request.model_dump(mode="json")["universe"] == expected


def test_universe_rejects_other_values() -> None:
    with pytest.raises(ValidationError) as caught:
        BacktestRequest.model_validate({**BASE, "universe": "sp500"})
    assert caught.value.errors()[0]["loc"] == ("universe",)


def test_universe_resolved_request_validates_again_unchanged() -> None:
    """The worker re-reads the stored config: resolving twice changes nothing."""
    stored = BacktestRequest.model_validate(BASE).model_dump(mode="json")
    again = BacktestRequest.model_validate(stored)
    assert again.model_dump(mode="json") == stored
