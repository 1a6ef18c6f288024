"""Named events, audited and counted: `guildhall:platform/events` (declare `events = true`).

    from guildhall import events

    events.emit("notice.posted", {"id": 7})

Names are 1 to 64 characters of `a-z`, `0-9`, `.`, `-`, `_`; the payload is any JSON value
up to 64 KiB. Never put personal data in an event.
"""

from __future__ import annotations

import json as _json
from typing import Any

from . import _wit
from .errors import HTTPError

__all__ = ["emit", "EventsError"]


class EventsError(HTTPError):
    """Why an event was not recorded. `kind` is `invalid-name`, `invalid-payload`,
    `too-large` or `unavailable` (a quota message starts `quota exceeded:`)."""

    def __init__(self, kind: str, value: Any) -> None:
        status = 503 if kind == "unavailable" else 500
        super().__init__(status, "the service could not record what happened")
        self.kind = kind
        self.value = value

    def __str__(self) -> str:
        return f"events {self.kind}: {self.value}"


def emit(name: str, payload: Any = None) -> None:
    """Records the event `name` with `payload` (serialised as JSON; `None` is `{}`)."""
    binding = _wit.require("events")
    text = _json.dumps({} if payload is None else payload, separators=(",", ":"))
    try:
        binding.emit(name, text)
    except Exception as e:
        if _wit.is_err(e):
            err = _wit.err_value(e)
            kind = type(err).__name__.removeprefix("Error_")
            kind = "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-")
            raise EventsError(kind, getattr(err, "value", None)) from None
        raise
