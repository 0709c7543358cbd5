"""Password hashing, tokens, the secret policy and log redaction (no I/O)."""

from __future__ import annotations

import datetime as dt
import uuid

import jwt
import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from app.core import security
from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.logging import REDACTED, redact_secrets
from app.core.security import (
    create_access_token,
    decode_access_token,
    hash_password,
    verify_password,
)

SECRET = "s" * 64


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(_env_file=None, environment="test", jwt_secret=SECRET)


def test_hash_password_uses_argon2id_and_verifies() -> None:
    hashed = hash_password("correct horse")

    assert hashed.startswith("$argon2id$")
    assert verify_password("correct horse", hashed) == (True, None)


def test_verify_password_rejects_wrong_password_and_garbage_hash() -> None:
    hashed = hash_password("correct horse")

    assert verify_password("wrong horse", hashed) == (False, None)
    assert verify_password("correct horse", "not-a-hash") == (False, None)


def test_verify_password_returns_new_hash_when_parameters_changed() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    weak_hash = old.hash("pw-123456")

    ok, new_hash = verify_password("pw-123456", weak_hash)

    assert ok and new_hash is not None and new_hash != weak_hash
    assert verify_password("pw-123456", new_hash) == (True, None)


def test_the_stored_dummy_hash_costs_what_a_real_one_does() -> None:
    # Unknown usernames are verified against it (timing equalisation): it must carry
    # the hasher's current parameters, else a parameter change would make those
    # logins cheaper (the fallback then hashes once, at the first use).
    stored = security._DUMMY_HASH_STORED
    assert not security._hasher.check_needs_rehash(stored)
    assert security._dummy_hash() == stored
    assert verify_password("dummy-password-for-timing-equalisation", stored) == (
        True,
        None,
    )


def test_token_round_trip(settings: Settings) -> None:
    user_id = uuid.uuid4()

    issued = create_access_token(user_id, settings=settings)
    payload = decode_access_token(issued.access_token, settings=settings)

    assert payload.sub == str(user_id)
    assert issued.expires_in == settings.jwt_expire_minutes * 60
    assert payload.exp - payload.iat == dt.timedelta(seconds=issued.expires_in)


def test_decode_expired_token_is_unauthorized(settings: Settings) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    token = create_access_token("u", settings=settings, now=past).access_token

    with pytest.raises(Unauthorized, match="expired"):
        decode_access_token(token, settings=settings)


def test_a_remembered_token_still_expires(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = create_access_token("u", settings=settings).access_token
    payload = decode_access_token(token, settings=settings)  # verified, now cached
    assert decode_access_token(token, settings=settings) is payload

    later = payload.exp + dt.timedelta(seconds=1)
    monkeypatch.setattr(security, "_now", lambda: later)

    with pytest.raises(Unauthorized, match="expired"):
        decode_access_token(token, settings=settings)


def test_a_remembered_token_is_checked_again_under_another_secret(
    settings: Settings,
) -> None:
    token = create_access_token("u", settings=settings).access_token
    decode_access_token(token, settings=settings)
    rotated = settings.model_copy(update={"jwt_secret": "r" * 64})

    with pytest.raises(Unauthorized):
        decode_access_token(token, settings=rotated)


def test_rejected_tokens_are_not_remembered(settings: Settings) -> None:
    before = security._verified.cache_info().currsize
    for n in range(5):
        with pytest.raises(Unauthorized):
            decode_access_token(f"garbage.{n}.token", settings=settings)

    assert security._verified.cache_info().currsize == before


@pytest.mark.parametrize(
    ("key", "algorithm", "claims"),
    [
        (None, "none", {"sub": "u", "iat": 1, "exp": 4_000_000_000}),
        ("k" * 48, "HS256", {"sub": "u", "iat": 1, "exp": 4_000_000_000}),
        (SECRET, "HS512", {"sub": "u", "iat": 1, "exp": 4_000_000_000}),
        (SECRET, "HS256", {"sub": "u", "iat": 1}),
        (SECRET, "HS256", {"iat": 1, "exp": 4_000_000_000}),
        (SECRET, "HS256", {"sub": "u", "exp": 4_000_000_000}),
    ],
    ids=["alg-none", "wrong-key", "hs512", "no-exp", "no-sub", "no-iat"],
)
def test_decode_rejects_bad_tokens(
    settings: Settings, key: str | None, algorithm: str, claims: dict[str, object]
) -> None:
    token = jwt.encode(claims, key, algorithm=algorithm)

    with pytest.raises(Unauthorized):
        decode_access_token(token, settings=settings)


@pytest.mark.parametrize("secret", ["dev-secret-change-me", "", "x" * 31])
def test_settings_refuse_weak_secret_in_production(secret: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(_env_file=None, environment="production", jwt_secret=secret)


def test_settings_accept_strong_secret_in_production() -> None:
    settings = Settings(_env_file=None, environment="production", jwt_secret=SECRET)

    assert settings.jwt_secret == SECRET


def test_settings_replace_placeholder_secret_in_development() -> None:
    first = Settings(_env_file=None, environment="development")
    second = Settings(_env_file=None, environment="development")

    assert len(first.jwt_secret) >= 32
    assert first.jwt_secret != "dev-secret-change-me"
    assert first.jwt_secret != second.jwt_secret


def test_redact_secrets_masks_keys_and_query_tokens() -> None:
    event = {
        "event": "GET /ws/progress?token=abc.def&x=1",
        "password": "hunter2",
        "headers": {"Authorization": "Bearer abc", "accept": "json"},
        "user": "alice",
    }

    redacted = redact_secrets(None, "info", event)

    assert redacted["password"] == REDACTED
    assert redacted["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert redacted["event"] == f"GET /ws/progress?token={REDACTED}&x=1"
    assert redacted["user"] == "alice"
