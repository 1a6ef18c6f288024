"""A citizen's session with this plugin for this council: `guildhall:platform/session`
(declare `session = true`).

A `GET` (or `HEAD`) that calls `set` or `csrf_token` starts the session. Every form posted in
a session must carry `csrf_token()` as the hidden field `csrf` (or the header
`x-csrf-token`), or the platform refuses it with 403 before the plugin runs.

    from guildhall import session

    session.set_json("answers", {"street": "High Street"})
    answers = session.get_json("answers", {})
    token = session.csrf_token()
"""

from __future__ import annotations

import json as _json
from typing import Any, Optional, Union

from . import _wit
from .errors import HTTPError

__all__ = [
    "get", "get_text", "get_json", "set", "set_json", "remove", "clear", "csrf_token",
    "SessionError",
]


class SessionError(HTTPError):
    """`kind` is `no-session` (this request cannot start one: 400), `invalid-key` (500),
    `too-large` (413) or `unavailable` (503)."""

    _STATUS = {"no-session": 400, "invalid-key": 500, "too-large": 413, "unavailable": 503}
    _DETAIL = {
        "no-session": "this request has no session; start again from the first page",
        "invalid-key": "the service is not configured correctly",
        "too-large": "too much has been entered in this session",
        "unavailable": "sessions are unavailable; try again later",
    }

    def __init__(self, kind: str, value: Any) -> None:
        super().__init__(self._STATUS.get(kind, 503), self._DETAIL.get(kind, "session failed"))
        self.kind = kind
        self.value = value

    def __str__(self) -> str:
        return f"session {self.kind}: {self.value}"


def _call(fn: str, *args: Any) -> Any:
    binding = _wit.require("session")
    try:
        return getattr(binding, fn)(*args)
    except Exception as e:
        if _wit.is_err(e):
            err = _wit.err_value(e)
            kind = type(err).__name__.removeprefix("Error_")
            kind = "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-")
            raise SessionError(kind, getattr(err, "value", None)) from None
        raise


def get(key: str) -> Optional[bytes]:
    """The value under `key` in this citizen's session, or `None`."""
    return _call("get", key)


def get_text(key: str) -> Optional[str]:
    value = get(key)
    return None if value is None else value.decode("utf-8")


def get_json(key: str, default: Any = None) -> Any:
    value = get(key)
    return default if value is None else _json.loads(value)


def set(key: str, value: Union[bytes, str]) -> None:
    """Stores `value` under `key`, starting the session when this `GET` has none."""
    _call("set", key, value.encode("utf-8") if isinstance(value, str) else bytes(value))


def set_json(key: str, value: Any) -> None:
    _call("set", key, _json.dumps(value, separators=(",", ":")).encode("utf-8"))


def remove(key: str) -> bool:
    """Removes `key`; returns whether it existed."""
    return _call("remove", key)


def clear() -> None:
    """Removes every value; the session and its token stay."""
    _call("clear")


def csrf_token() -> str:
    """The token every form of this session carries as the hidden field `csrf`."""
    return _call("csrf_token")
