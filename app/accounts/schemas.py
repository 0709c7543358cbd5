"""Auth request/response bodies."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, model_validator

from app.api.schemas import Schema
from app.core.security import Tier

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256  # bounds the hashing cost of a single request


class RegisterRequest(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"username": "alice", "password": "correct-horse-battery"}]
        },
    )

    username: str = Field(
        min_length=3,
        max_length=64,
        pattern=USERNAME_PATTERN,
        description="3–64 characters: letters, digits, `_`, `.`, `-`",
    )
    password: str = Field(
        min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )
    email: EmailStr | None = Field(
        default=None, description="Optional: where completion e-mails go."
    )


class LoginRequest(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"username": "alice", "password": "correct-horse-battery"}]
        },
    )

    # Deliberately loose: a malformed username is just a failed login (401).
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class PasswordChange(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "current_password": "correct-horse-battery",
                    "new_password": "another-long-passphrase",
                }
            ]
        },
    )

    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    new_password: str = Field(
        min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )


class TokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
                    "token_type": "bearer",
                    "expires_in": 3600,
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - not a secret
    expires_in: int = Field(description="Seconds until the token expires")


class UserRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c7a52-8d0e-4a57-9d7c-2b1e6f0a9c11",
                    "username": "alice",
                    "tier": "free",
                    "is_admin": False,
                }
            ]
        },
    )

    id: uuid.UUID
    username: str
    tier: Tier
    is_admin: bool
    email: str | None = None
    notify_email: bool = Field(
        default=False, description="E-mail on completion unless a submission says no."
    )


class AdminUserUpdate(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tier": "pro"}, {"is_admin": True}]},
    )

    tier: Tier | None = None
    is_admin: StrictBool | None = None  # strict: 0/1/"true" are not booleans

    @model_validator(mode="after")
    def _at_least_one_field(self) -> AdminUserUpdate:
        if self.tier is None and self.is_admin is None:
            raise ValueError("give at least one of tier, is_admin")
        return self


class ProfileUpdate(Schema):
    """``PATCH /v1/auth/me``: fields left out are unchanged; ``email: null`` removes
    the address (and turns ``notify_email`` off)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "alice@example.com", "notify_email": True}]
        },
    )

    email: EmailStr | None = None
    notify_email: StrictBool | None = None
