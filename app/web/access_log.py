"""The access log (LITETASK_ACCESS_LOG=1): one line per HTTP request, once its response has
ended, on the `litetask.access` logger.

It records the method, the path, the status, the duration in seconds and the client's
address (a trusted proxy's X-Forwarded-For, see app/web/perimeter.py), and nothing else: never
a header (Authorization, cookies) and never the query string, which may carry a token.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import ACCESS_LOGGER

logger = logging.getLogger(ACCESS_LOGGER)


class AccessLog:
    """ASGI middleware; see the module docstring. A request whose client left before any
    response logs status null."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            _log(scope, status, time.perf_counter() - started)


def _log(scope: Scope, status: int | None, seconds: float) -> None:
    client = scope.get("client")
    fields = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration": round(seconds, 6),
        "client": client[0] if client else None,
    }
    logger.info(
        "%s %s %s %.3fs %s",
        fields["method"],
        fields["path"],
        status,
        seconds,
        fields["client"],
        extra=fields,
    )
