"""noticeboard: a council's notices, kept in kv under `council/{council}/`.

    GET    /notices        {"notices": [...]}, ascending by id
    GET    /notices/{id}   one notice, 404 when missing
    POST   /notices        {"title", "body"}: officers and tenant admins; 201 + Location
    DELETE /notices/{id}   officers and tenant admins; 204

Each notice is `council/{c}/notices/{id:06}`, its id from `increment("council/{c}/next-id")`.
"""

from typing import Any, Dict, List, Optional

import guildhall
from guildhall import HTTPError, Request, Response, Router, context, events, kv, time

WRITERS = ("officer", "tenant-admin")
PAGE_SIZE = 1000

router = Router()


def notice_key(notice_id: int) -> str:
    return f"notices/{notice_id:06}"


def parse_id(raw: str) -> Optional[int]:
    """A notice id from the path: a positive decimal number, or None."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        return None
    value = int(raw)
    return value if value > 0 else None


def validate(data: Any) -> Dict[str, str]:
    """The title and body of a new notice, or HTTPError(422) naming the field."""
    if not isinstance(data, dict):
        raise HTTPError(422, "the body must be a JSON object with a title and a body")
    title, body = data.get("title"), data.get("body")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 100 or len(title) > 100:
        raise HTTPError(422, "title must be 1 to 100 characters")
    if not isinstance(body, str) or not 1 <= len(body.strip()) <= 2000 or len(body) > 2000:
        raise HTTPError(422, "body must be 1 to 2000 characters")
    return {"title": title, "body": body}


def not_found(raw: str) -> HTTPError:
    return HTTPError(404, f"there is no notice {raw}")


@router.get("/notices")
def list_notices(req: Request) -> Response:
    store = kv.council_store()
    notices: List[Any] = []
    for key in store.iter_keys("notices/", PAGE_SIZE):
        notice = store.get_json(key)
        if notice is not None:
            notices.append(notice)
    return Response.json({"notices": notices})


@router.post("/notices")
def post_notice(req: Request) -> Response:
    officer = context.writer(WRITERS)
    try:
        data = req.json()
    except HTTPError:
        raise HTTPError(422, "the body must be JSON with a title and a body") from None
    fields = validate(data)
    store = kv.council_store()
    notice_id = store.increment("next-id")
    notice = {
        "id": notice_id,
        "title": fields["title"],
        "body": fields["body"],
        "posted_by": officer.id,
        "posted_at": time.now_rfc3339(),
    }
    store.set_json(notice_key(notice_id), notice)
    events.emit("notice.posted", {"id": notice_id})
    return Response.json(notice, 201).with_header("location", f"/notices/{notice_id}")


@router.get("/notices/{id}")
def get_notice(req: Request) -> Response:
    notice_id = parse_id(req.params["id"])
    notice = None if notice_id is None else kv.council_store().get_json(notice_key(notice_id))
    if notice is None:
        raise not_found(req.params["id"])
    return Response.json(notice)


@router.delete("/notices/{id}")
def delete_notice(req: Request) -> Response:
    context.writer(WRITERS)
    notice_id = parse_id(req.params["id"])
    if notice_id is None or not kv.council_store().delete(notice_key(notice_id)):
        raise not_found(req.params["id"])
    events.emit("notice.removed", {"id": notice_id})
    return Response.empty(204)


IncomingHandler = guildhall.export(router)
