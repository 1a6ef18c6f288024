"""Exceptions that become RFC 9457 problem responses.

Raise `HTTPError(status, detail)` from a handler to answer with
`{"type": "about:blank", "title": <reason>, "status": status, "detail": detail}`. The
platform errors below are `HTTPError`s too, so an uncaught one answers with a sensible status
and a detail that never carries a value or a secret.
"""

from __future__ import annotations

from typing import Any, Dict, Optional


class HTTPError(Exception):
    """An error that answers the request with a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        extensions: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def response(self):  # -> Response (imported lazily: http imports errors)
        from .http import Response

        resp = Response.problem(
            self.status, self.detail, title=self.title, **self.extensions
        )
        for name, value in self.headers.items():
            resp.headers[name.lower()] = value
        return resp


class CapabilityError(HTTPError):
    """The plugin called a platform interface its manifest does not declare: a bug (500)."""

    def __init__(self, message: str) -> None:
        super().__init__(500, "the service is not configured correctly")
        self.message = message

    def __str__(self) -> str:
        return self.message


class Refusal(HTTPError):
    """The caller may not do this: 401 when anonymous, 403 otherwise."""
