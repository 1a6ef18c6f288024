"""The `wasi:http/incoming-handler` plumbing: from the platform's request to a handler and
back. An app module exports its handler with

    IncomingHandler = guildhall.export(router)

(componentize-py looks for a class named `IncomingHandler` in the app module.)
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, List, Tuple

from . import _wit
from .http import Handler, Request, Response, call

__all__ = ["export"]

# `blocking-write-and-flush` takes at most 4096 bytes per call (wasi:io/streams 0.2).
_WRITE_CHUNK = 4096
_READ_CHUNK = 65536


def _method(method: Any) -> str:
    name = type(method).__name__
    if name == "Method_Other":
        return str(method.value).upper()
    return name.removeprefix("Method_").upper()


def _read_request(request: Any) -> Request:
    types = _wit.types
    with request.headers() as fields:
        headers: List[Tuple[str, str]] = [
            (name, value.decode("latin-1")) for name, value in fields.entries()
        ]
    chunks: List[bytes] = []
    body = request.consume()
    with body.stream() as stream:
        while True:
            try:
                chunk = stream.blocking_read(_READ_CHUNK)
            except Exception as e:  # Err(StreamError_Closed) ends the body
                if _wit.is_err(e) and type(_wit.err_value(e)).__name__ == "StreamError_Closed":
                    break
                raise
            chunks.append(chunk)
    with types.IncomingBody.finish(body):
        pass
    return Request(
        _method(request.method()),
        request.path_with_query() or "/",
        headers,
        b"".join(chunks),
    )


def _outgoing(resp: Response, head: bool) -> Tuple[Any, bytes]:
    """The platform's response object for `resp` (headers and status), and the body to write."""
    types = _wit.types
    headers = [
        (name, value.encode("latin-1"))
        for name, value in resp.headers.items()
        if name != "content-length"
    ]
    body_bytes = b"" if head else resp.body
    if not head and resp.status not in (204, 304):
        headers.append(("content-length", str(len(body_bytes)).encode()))
    out = types.OutgoingResponse(types.Fields.from_list(headers))
    out.set_status_code(resp.status)
    return out, body_bytes


def _write_response(resp: Response, response_out: Any, head: bool) -> None:
    types = _wit.types
    try:
        out, body_bytes = _outgoing(resp, head)
    except Exception:  # a header the platform refuses, a status out of range
        out, body_bytes = _outgoing(_internal_error(), head)
    body = out.body()
    types.ResponseOutparam.set(response_out, _wit.runtime_types.Ok(out))
    with body.write() as stream:
        for start in range(0, len(body_bytes), _WRITE_CHUNK):
            stream.blocking_write_and_flush(body_bytes[start : start + _WRITE_CHUNK])
    types.OutgoingBody.finish(body, None)


def _internal_error() -> Response:
    traceback.print_exc(file=sys.stderr)
    return Response.problem(500, "the service failed to answer this request")


def respond(handler: Handler, req: Request) -> Response:
    """`handler`'s response to `req`, with every failure turned into a problem response."""
    try:
        resp = call(handler, req)
        resp.status = int(resp.status)
        if not 100 <= resp.status <= 999:
            raise ValueError(f"status {resp.status} is not an HTTP status")
        return resp
    except Exception:
        return _internal_error()


def export(handler: Handler) -> type:
    """The `IncomingHandler` class componentize-py exports, answering with `handler` (a
    `Router` or any function from `Request` to a response)."""
    base: type = _wit.exports.IncomingHandler if _wit.exports is not None else object

    class IncomingHandler(base):  # type: ignore[misc, valid-type]
        def handle(self, request: Any, response_out: Any) -> None:
            try:
                req = _read_request(request)
            except Exception:
                _write_response(_internal_error(), response_out, False)
                return
            _write_response(respond(handler, req), response_out, req.method == "HEAD")

    return IncomingHandler
