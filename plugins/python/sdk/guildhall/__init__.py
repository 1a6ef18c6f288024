"""Guildhall's Python SDK: write a plugin's HTTP handlers; the SDK does the plumbing.

    import guildhall
    from guildhall import Router, Response, context

    router = Router()

    @router.get("/")
    def index(req):
        return Response.text(f"Hello from {context.council()}!")

    IncomingHandler = guildhall.export(router)

Modules: `context` (tenant, council, caller, config, site), `kv`, `events`, `authz`,
`session`, `secrets` (each needs its declaration in plugin.toml), `time`.
"""

from . import authz, context, events, kv, secrets, session, time
from .errors import CapabilityError, HTTPError, Refusal
from .http import Request, Response, Router, problem
from .serve import export

__version__ = "0.1.0"

__all__ = [
    "export", "Request", "Response", "Router", "problem", "HTTPError", "Refusal",
    "CapabilityError", "context", "kv", "events", "authz", "session", "secrets", "time",
]
