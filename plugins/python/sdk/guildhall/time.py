"""The wall clock (WASI `wall-clock`, always available), in UTC.

    from guildhall import time
    time.now_rfc3339()    # "2025-05-01T09:30:00Z"
"""

from __future__ import annotations

import datetime as _dt

__all__ = ["now", "now_rfc3339", "today"]


def now() -> _dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def now_rfc3339() -> str:
    """The current time as RFC 3339 in UTC, to the second: `2025-05-01T09:30:00Z`."""
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> _dt.date:
    """Today's date in UTC."""
    return now().date()
