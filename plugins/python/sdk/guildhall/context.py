"""Who is calling and where: `guildhall:platform/context` (always available).

    from guildhall import context

    context.tenant(), context.council()          # "north-downs", "tandridge"
    caller = context.caller()                    # Anonymous() or Subject(id, roles, council)
    officer = context.writer(["officer", "tenant-admin"])   # Subject, or raises Refusal
    context.config_value("greeting", "Hello")    # the install's setting, or the default
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Union

from . import _wit
from .errors import Refusal

__all__ = [
    "tenant", "council", "plugin", "version", "request_id", "caller", "config",
    "config_value", "site", "writer", "acting_caller", "Anonymous", "Subject", "Site",
]


@dataclass(frozen=True)
class Anonymous:
    """A caller without credentials, typically a citizen."""

    is_anonymous = True

    def has_any_role(self, roles: Iterable[str]) -> bool:
        return False


@dataclass(frozen=True)
class Subject:
    """An authenticated caller: its id, its roles in this tenant, and the council its roles
    are limited to (`None`: every council of the tenant)."""

    id: str
    roles: List[str] = field(default_factory=list)
    council: Optional[str] = None
    is_anonymous = False

    def has_any_role(self, roles: Iterable[str]) -> bool:
        """Whether the subject holds at least one of `roles`."""
        wanted = set(roles)
        return any(role in wanted for role in self.roles)

    def acts_for(self, council: str) -> bool:
        """Whether its roles are not limited to another council than `council`."""
        return self.council is None or self.council == council


Caller = Union[Anonymous, Subject]


@dataclass(frozen=True)
class Site:
    """How this council's pages look and where they live (what a GOV.UK page shows)."""

    tenant_name: str
    council_name: str
    assets: str
    brand_stylesheet: Optional[str]
    logo: Optional[str]
    contact_url: Optional[str]
    accessibility_url: Optional[str]
    base_path: str
    feedback_path: str

    def url(self, path: str) -> str:
        """The address of one of this plugin's pages: `site.url("/check")` is
        `/s/north-downs/tandridge/my-plugin/check`."""
        base = self.base_path.rstrip("/")
        return f"{base}{path}" if path.startswith("/") else f"{base}/{path}"


def _ctx() -> Any:
    return _wit.require("context")


def tenant() -> str:
    """The tenant (alliance) id, e.g. `north-downs`."""
    return _ctx().tenant()


def council() -> str:
    """The council the request is for, e.g. `tandridge`."""
    return _ctx().council()


def plugin() -> str:
    """This plugin's name."""
    return _ctx().plugin()


def version() -> str:
    """This plugin's version."""
    return _ctx().version()


def request_id() -> str:
    """The platform's id for this request; include it in anything you log."""
    return _ctx().request_id()


def caller() -> Caller:
    """Who made the request: `Anonymous()` or a `Subject`. The token itself never reaches the
    plugin."""
    principal = _ctx().caller()
    subject = getattr(principal, "value", None)
    if subject is None:
        return Anonymous()
    return Subject(id=subject.id, roles=list(subject.roles), council=subject.council)


def config() -> Dict[str, Any]:
    """The install's whole configuration (checked against the manifest's `[config]`)."""
    return _json.loads(_ctx().config())



def config_value(key: str, default: Any = None) -> Any:
    """One configuration value (any JSON value), or `default` when it is not set."""
    raw = _ctx().config_value(key)
    if raw is None:
        return default
    return _json.loads(raw)


def site() -> Site:
    """How this council's pages look and where they live."""
    s = _ctx().current_site()
    return Site(
        tenant_name=s.tenant_name,
        council_name=s.council_name,
        assets=s.assets,
        brand_stylesheet=s.brand_stylesheet,
        logo=s.logo,
        contact_url=s.contact_url,
        accessibility_url=s.accessibility_url,
        base_path=s.base_path,
        feedback_path=s.feedback_path,
    )


def acting_caller() -> Subject:
    """The caller, when it may act for this council: authenticated, holding some role, and not
    limited to another council. Raises `Refusal` (401 anonymous, 403 otherwise)."""
    who = caller()
    if not isinstance(who, Subject):
        raise Refusal(401, "sign in as a council officer to do this")
    here = council()
    if not who.acts_for(here):
        raise Refusal(
            403,
            f"your roles are for the council {who.council}, so you may not change another council's data",
        )
    if not who.roles:
        raise Refusal(403, "you hold no role in this alliance")
    return who


def writer(roles: Iterable[str]) -> Subject:
    """The caller, when it may change this council's data: `acting_caller()` and holding at
    least one of `roles`. Raises `Refusal` (401 anonymous, 403 otherwise)."""
    roles = list(roles)
    who = acting_caller()
    if not who.has_any_role(roles):
        raise Refusal(403, f"this needs one of the roles {', '.join(roles)}")
    return who
