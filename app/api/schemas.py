"""Shared API contract pieces: the request-body base :class:`Schema`, the error
envelope and the ``responses`` helper that documents it on every route, and the
health/readiness bodies."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.text import UNSAFE_TEXT_MESSAGE, unsafe_paths


class Schema(BaseModel):
    """Base of every request body: no string anywhere in it (dict keys and nested
    values included) may hold a control character or a lone surrogate (400 naming
    the field; see :mod:`app.core.text`)."""

    @field_validator("*", mode="before")
    @classmethod
    def _safe_text(cls, value: Any) -> Any:
        for path in unsafe_paths(value):
            where = f" (at {path})" if path else ""
            raise ValueError(UNSAFE_TEXT_MESSAGE + where)
        return value


class ErrorResponse(BaseModel):
    """The one envelope of every error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": "NotFound", "message": "Backtest not found"},
                {
                    "error": "ValidationError",
                    "message": "Request validation failed",
                    "details": [
                        {"field": "body.password", "message": "Field required"}
                    ],
                },
            ]
        }
    )

    error: str = Field(
        description="Stable machine-readable code", examples=["NotFound"]
    )
    message: str = Field(description="Human-readable explanation")
    details: Any | None = Field(
        default=None, description="Per-field problems (validation) or extra context"
    )
    task_id: str | None = Field(default=None, description="The backtest concerned")


_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("ValidationError", "Request validation failed"),
    401: ("Unauthorized", "Could not validate credentials"),
    403: ("Forbidden", "Administrator rights required"),
    404: ("NotFound", "Not found"),
    409: ("Conflict", "Username already taken"),
    429: ("RateLimited", "Too many requests"),
    500: ("InternalError", "Internal server error"),
    503: ("ServiceUnavailable", "Service unavailable"),
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error codes, all with the envelope.

    ``@router.get(..., responses=error_responses(401, 404))``
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for code in status_codes:
        error, message = _EXAMPLES.get(code, ("Error", HTTPStatus(code).phrase))
        responses[code] = {
            "model": ErrorResponse,
            "description": HTTPStatus(code).phrase,
            "content": {
                "application/json": {"example": {"error": error, "message": message}}
            },
        }
    return responses


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class DependencyCheck(BaseModel):
    ok: bool
    detail: str | None = Field(default=None, examples=["at revision 0001 (head)"])


class Readiness(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "checks": {
                        "database": {"ok": True, "detail": "reachable"},
                        "migrations": {"ok": True, "detail": "at head 0001"},
                    },
                }
            ]
        }
    )

    status: Literal["ok", "unavailable"]
    checks: dict[str, DependencyCheck]
