"""Typed engine errors.

The engine raises these; the API layer maps them to 4xx responses. Every message says
what to fix, because it reaches the user verbatim.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of everything the engine raises on purpose."""


class InvalidInputError(EngineError, ValueError):
    """A backtest input (dates, symbols, parameters, filters, data file) is unusable.

    ``field`` names the offending input (``"start_date"``,
    ``"filter_criteria.filters[0].window"``, ``"row 17, column high"``) so callers
    can attach the message to it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class DataError(InvalidInputError):
    """A dataset file is missing, corrupt or fails validation."""


class CancelledError(EngineError):
    """The caller's ``should_cancel`` returned True; the run stopped between chunks."""


class NumericLimitError(EngineError):
    """A run left the range where float64 arithmetic is exact (e.g. share counts of
    2**53 or more, reached only with implausible prices). ``row``/``col`` locate it
    in the simulated arrays when known."""

    def __init__(
        self, message: str, *, row: int | None = None, col: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.col = col
