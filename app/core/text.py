"""Text a client may send: no control characters and no lone surrogates.

PostgreSQL refuses a NUL byte in ``text`` (and asyncpg a lone surrogate), SQLite
stores them, log lines and terminals are corrupted by the others. The API refuses
them at its boundary, in both modes alike: every string of a JSON body (keys
included, at any depth) through :class:`app.api.schemas.Schema`, every query
parameter and path segment through :class:`app.api.middleware.SafeTextMiddleware`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# C0 controls (tab and newline included), DEL, C1 controls, lone UTF-16 surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
UNSAFE_TEXT_MESSAGE = "must not contain control characters"


def is_safe_text(value: str) -> bool:
    return _UNSAFE.search(value) is None


def unsafe_paths(value: Any, path: str = "") -> Iterator[str]:
    """The paths (``filter_criteria.filters[0].field``) of strings in ``value`` with
    an unsafe character; a dict key that is unsafe is reported at its dict."""
    if isinstance(value, str):
        if not is_safe_text(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not is_safe_text(key):
                yield path
                continue
            yield from unsafe_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from unsafe_paths(item, f"{path}[{index}]")


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: the one form lookups and limits compare."""
    return username.strip().lower()
