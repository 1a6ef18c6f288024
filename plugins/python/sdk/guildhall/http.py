"""Requests, responses and the router.

The SDK reads the whole request body before a handler runs (the platform has already refused
bodies over its cap with `413`) and writes the handler's `Response` with its
`content-length`. A handler returns a `Response`, a `str` (200 `text/plain`) or a `dict`/`list`
(200 JSON), or raises `HTTPError`; any other exception answers `500` without its message
(the traceback goes to the platform's log through stderr).
"""

from __future__ import annotations

import json as _json
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import parse_qsl, unquote

from .errors import HTTPError

__all__ = [
    "Request",
    "Response",
    "Router",
    "Handler",
    "problem",
    "reason_phrase",
]

_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone",
    412: "Precondition Failed", 413: "Content Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Content", 428: "Precondition Required", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 507: "Insufficient Storage",
}


def reason_phrase(status: int) -> str:
    """The reason phrase of `status` (a problem's default `title`)."""
    if status in _REASONS:
        return _REASONS[status]
    return {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error"}.get(
        status // 100, "Server Error"
    )


def _dumps(value: Any) -> bytes:
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Request:
    """An incoming request, as the plugin sees it: the path is under the plugin's root."""

    def __init__(
        self,
        method: str,
        path_with_query: str = "/",
        headers: Optional[Iterable[Tuple[str, str]]] = None,
        body: bytes = b"",
    ) -> None:
        self.method: str = method.upper()
        path, _, query = path_with_query.partition("?")
        #: The path, starting with `/`, as sent (not percent-decoded).
        self.path: str = path or "/"
        #: The query string without `?`, as sent.
        self.query_string: str = query
        self.headers: Dict[str, str] = {}
        for name, value in headers or ():
            name = name.lower()
            self.headers[name] = (
                f"{self.headers[name]}, {value}" if name in self.headers else value
            )
        self.body: bytes = body
        #: Path parameters of the matched route, percent-decoded (`/notices/{id}` -> `id`).
        self.params: Dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """A request header (case-insensitive); several values are joined with `, `."""
        return self.headers.get(name.lower(), default)

    @property
    def query(self) -> Dict[str, str]:
        """The query parameters, percent-decoded; the first value of a repeated name."""
        out: Dict[str, str] = {}
        for name, value in parse_qsl(self.query_string, keep_blank_values=True):
            out.setdefault(name, value)
        return out

    def query_param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One query parameter, percent-decoded, or `default`."""
        return self.query.get(name, default)

    def query_all(self, name: str) -> List[str]:
        """Every value of a repeated query parameter."""
        return [v for n, v in parse_qsl(self.query_string, keep_blank_values=True) if n == name]

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters (`""` when absent)."""
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def text(self) -> str:
        """The body as UTF-8 text; `HTTPError(400)` when it is not UTF-8."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, "the request body is not UTF-8 text") from None

    def json(self) -> Any:
        """The body parsed as JSON; `HTTPError(400)` when it is not JSON."""
        try:
            return _json.loads(self.text())
        except ValueError as e:
            raise HTTPError(400, f"the request body is not valid JSON: {e}") from None

    def form(self) -> Dict[str, str]:
        """An `application/x-www-form-urlencoded` body; the first value of a repeated field."""
        out: Dict[str, str] = {}
        for name, value in self.form_items():
            out.setdefault(name, value)
        return out

    def form_items(self) -> List[Tuple[str, str]]:
        """Every field of an urlencoded body, in order (repeated names kept)."""
        return parse_qsl(self.text(), keep_blank_values=True)


class Response:
    """A response. Header names are stored lower case."""

    def __init__(
        self,
        status: int = 200,
        body: Union[bytes, str] = b"",
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.status = status
        self.body: bytes = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.headers: Dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"

    def with_header(self, name: str, value: str) -> "Response":
        """Sets a header (replacing one of the same name) and returns the response."""
        self.headers[name.lower()] = value
        return self

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    @classmethod
    def text(cls, body: str, status: int = 200) -> "Response":
        """`text/plain; charset=utf-8`."""
        return cls(status, body, {"content-type": "text/plain; charset=utf-8"})

    @classmethod
    def html(cls, body: str, status: int = 200) -> "Response":
        """`text/html; charset=utf-8`. Escape what you interpolate (`html.escape`)."""
        return cls(status, body, {"content-type": "text/html; charset=utf-8"})

    @classmethod
    def json(cls, value: Any, status: int = 200) -> "Response":
        """`application/json` of any JSON-serialisable value."""
        return cls(status, _dumps(value), {"content-type": "application/json"})

    @classmethod
    def problem(
        cls, status: int, detail: str, *, title: Optional[str] = None, **extensions: Any
    ) -> "Response":
        """An RFC 9457 problem: `{"type": "about:blank", "title", "status", "detail"}` plus
        `extensions` (which cannot replace those four members)."""
        doc: Dict[str, Any] = {
            "type": "about:blank",
            "title": title or reason_phrase(status),
            "status": status,
            "detail": detail,
        }
        for name, value in extensions.items():
            if name not in doc:
                doc[name] = value
        return cls(status, _dumps(doc), {"content-type": "application/problem+json"})

    @classmethod
    def see_other(cls, location: str) -> "Response":
        """`303 See Other` to `location` (after a form post)."""
        return cls(303, b"", {"location": location})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> "Response":
        return cls(status, b"", {"location": location})

    @classmethod
    def empty(cls, status: int = 204) -> "Response":
        return cls(status, b"")


def problem(status: int, detail: str, **extensions: Any) -> Response:
    """Shorthand for `Response.problem(status, detail, ...)`."""
    return Response.problem(status, detail, **extensions)


Handler = Callable[[Request], Any]


def to_response(value: Any) -> Response:
    """What a handler returned, as a `Response`."""
    if isinstance(value, Response):
        return value
    if value is None:
        return Response.empty(204)
    if isinstance(value, str):
        return Response.text(value)
    if isinstance(value, (bytes, bytearray)):
        return Response(200, bytes(value), {"content-type": "application/octet-stream"})
    if isinstance(value, (dict, list)):
        return Response.json(value)
    raise TypeError(f"a handler returned {type(value).__name__}, not a Response")


def call(handler: Handler, req: Request) -> Response:
    """Runs `handler`, turning `HTTPError` into its problem response."""
    try:
        return to_response(handler(req))
    except HTTPError as e:
        return e.response()


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class _Route:
    def __init__(self, method: str, pattern: str, handler: Handler) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"a route's path starts with `/`: {pattern!r}")
        self.method = method
        self.pattern = pattern
        self.handler = handler
        self.segments = pattern.split("/")[1:]
        for i, seg in enumerate(self.segments):
            if seg.startswith("{*") and i != len(self.segments) - 1:
                raise ValueError(f"`{seg}` must be the last segment of {pattern!r}")

    def match(self, path: str) -> Optional[Dict[str, str]]:
        parts = path.split("/")[1:]
        params: Dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            if seg.startswith("{*") and seg.endswith("}"):
                params[seg[2:-1]] = unquote("/".join(parts[i:]))
                return params
            if i >= len(parts):
                return None
            if seg.startswith("{") and seg.endswith("}"):
                if parts[i] == "":
                    return None
                params[seg[1:-1]] = unquote(parts[i])
            elif seg != parts[i]:
                return None
        return params if len(parts) == len(self.segments) else None


class Router:
    """Routes by method and path pattern.

    Patterns are literal segments and `{name}` (one non-empty segment, percent-decoded into
    `req.params["name"]`); a last segment `{*rest}` takes the rest of the path. Routes are
    tried in the order they were added. A path no route matches answers `404`; a path that
    matches with another method answers `405` with `Allow`. `GET` routes also serve `HEAD`
    (without the body) and `OPTIONS` answers `204` with `Allow`.

        router = Router()

        @router.get("/notices/{id}")
        def show(req):
            return {"id": req.params["id"]}
    """

    def __init__(self) -> None:
        self.routes: List[_Route] = []

    def route(self, path: str, methods: Iterable[str] = ("GET",)) -> Callable[[Handler], Handler]:
        """Decorator: `handler` answers `methods` on `path`."""

        def add(handler: Handler) -> Handler:
            for method in methods:
                self.add(method, path, handler)
            return handler

        return add

    def add(self, method: str, path: str, handler: Handler) -> "Router":
        """Adds a route without the decorator syntax."""
        method = method.upper()
        if method not in _METHODS:
            raise ValueError(f"unknown method {method!r}")
        self.routes.append(_Route(method, path, handler))
        return self

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ("GET",))

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ("POST",))

    def put(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ("PUT",))

    def patch(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ("PATCH",))

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self.route(path, ("DELETE",))

    def __call__(self, req: Request) -> Response:
        return self.handle(req)

    def handle(self, req: Request) -> Response:
        """Answers `req` with the first matching route, or a 404/405 problem."""
        allowed: List[str] = []
        for route in self.routes:
            params = route.match(req.path)
            if params is None:
                continue
            if route.method == req.method or (route.method == "GET" and req.method == "HEAD"):
                req.params = params
                resp = call(route.handler, req)
                if req.method == "HEAD":
                    resp.body = b""
                return resp
            if route.method not in allowed:
                allowed.append(route.method)
        if not allowed:
            return Response.problem(404, f"there is nothing at {req.path}")
        if "GET" in allowed and "HEAD" not in allowed:
            allowed.append("HEAD")
        if "OPTIONS" not in allowed:
            allowed.append("OPTIONS")
        allow = ", ".join(allowed)
        if req.method == "OPTIONS":
            return Response.empty(204).with_header("allow", allow)
        return Response.problem(
            405, f"{req.method} is not allowed here; use {allow}"
        ).with_header("allow", allow)
