"""Secrets the alliance's administrators set for this install: `guildhall:platform/secrets`
(declare each under `[secrets]` in plugin.toml).

    from guildhall import secrets

    key = secrets.get("pay_api_key")        # None when nobody has set it
    key = secrets.require("pay_api_key")    # SecretsError (503) when nobody has set it

Never log a secret or put it in a response; `SecretsError` names the secret, never its value.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _wit
from .errors import HTTPError

__all__ = ["get", "require", "SecretsError"]


class SecretsError(HTTPError):
    """`kind` is `undeclared` (not in the manifest: a bug, 500), `unavailable` (try later,
    503) or `not-set` (no administrator has set it, 503)."""

    def __init__(self, kind: str, name: str, message: str = "") -> None:
        status = 500 if kind == "undeclared" else 503
        super().__init__(status, "the service is not configured correctly" if status == 500
                         else "the service is not available yet; try again later")
        self.kind = kind
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return f"secret {self.name!r}: {self.kind} {self.message}".rstrip()


def get(name: str) -> Optional[str]:
    """The declared secret `name` for the calling council, or `None` when it is not set."""
    binding = _wit.require("secrets")
    try:
        return binding.get(name)
    except Exception as e:
        if _wit.is_err(e):
            err: Any = _wit.err_value(e)
            if type(err).__name__.endswith("Undeclared"):
                raise SecretsError("undeclared", name) from None
            raise SecretsError("unavailable", name, str(getattr(err, "value", ""))) from None
        raise


def require(name: str) -> str:
    """The declared secret `name`, or `SecretsError("not-set")`."""
    value = get(name)
    if value is None:
        raise SecretsError("not-set", name)
    return value
