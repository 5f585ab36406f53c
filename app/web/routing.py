"""One route per path, whatever its methods, so a 405 lists every allowed method."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


def resource(path: str, handlers: Mapping[str, Handler]) -> Route:
    """A route serving `handlers` by method (HEAD answers like GET, as Starlette does)."""
    table = dict(handlers)
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])

    async def dispatch(request: Request) -> Response:
        return await table[request.method](request)

    dispatch.__name__ = dispatch.__qualname__ = "_".join(h.__name__ for h in handlers.values())
    return Route(path, dispatch, methods=list(table))
