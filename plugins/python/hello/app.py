"""hello: any GET answers `Hello from {council} ({tenant})!`, read from the platform's
`context`. It declares no capabilities."""

import guildhall
from guildhall import Request, Response, Router, context

router = Router()


@router.get("/{*path}")
def hello(req: Request) -> Response:
    return Response.text(f"Hello from {context.council()} ({context.tenant()})!")


IncomingHandler = guildhall.export(router)
