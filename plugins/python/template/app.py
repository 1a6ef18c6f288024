"""{{name}}: a Guildhall plugin.

    GET /            a greeting and how often this council's page was visited
    GET /visits      the count as JSON
"""

import guildhall
from guildhall import Request, Response, Router, context, kv

router = Router()


@router.get("/")
def index(req: Request) -> Response:
    # One atomic write per visit, in this council's part of the store.
    visits = kv.council_store().increment("visits")
    return Response.text(
        f"Hello from {context.council()} ({context.tenant()})! "
        f"This page has been visited {visits} time{'s' if visits != 1 else ''}.\n"
    )


@router.get("/visits")
def visits(req: Request) -> Response:
    count = int(kv.council_store().get_text("visits") or "0")
    return Response.json({"council": context.council(), "visits": count})


IncomingHandler = guildhall.export(router)
