"""DELETE /cache: forget every cached task result (the result cache, docs/cache.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.encoding import ApiJSONResponse
from app.web.state import settings_of, worker_of


async def clear_cache(request: Request) -> Response:
    """200 with `cleared` (false when the cache backend is `none`) and the backend."""
    worker = worker_of(request)
    cleared = worker.cache is not None
    await worker.clear_cache()
    return ApiJSONResponse({"cleared": cleared, "backend": settings_of(request).cache_backend})


routes: list[BaseRoute] = [Route("/cache", clear_cache, methods=["DELETE"])]
