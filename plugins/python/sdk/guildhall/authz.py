"""Access decisions from the tenant's policy: `guildhall:platform/authz` (declare
`authz = true`).

    from guildhall import authz

    if not authz.allowed("write", "bin-collections/schedules"):
        raise HTTPError(403, "you may not change the schedules")
"""

from __future__ import annotations

from . import _wit

__all__ = ["allowed"]


def allowed(action: str, object: str) -> bool:
    """Whether the calling principal may perform `action` on `object` in this tenant."""
    return bool(_wit.require("authz").allowed(action, object))
