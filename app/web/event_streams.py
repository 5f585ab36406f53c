"""What every Server-Sent-Events route does (app/web/events.py): read the app's state, parse
Last-Event-ID strictly, hold a counted stream slot, subscribe for the stream's lifetime, and
encode stream items (events, cursors, resets) with the log's epoch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.events.epoch import BadEventIdError, LogPosition, parse_last_event_id, sse_id
from app.events.filters import EventFilter
from app.events.manager import DropReason, EventManager, SubscriberDropped, Subscription
from app.events.sse import cursor_message, encode_events, event_stream_response, reset_message
from app.events.stream import Cursor, Reset, StreamItem
from app.web.errors import problem_response
from app.web.streams import StreamLimits
from app.worker.core import AsyncTaskWorker

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


@dataclass(frozen=True, slots=True)
class Asked:
    """The position a client resumes from, as it sent it (`raw`) and parsed."""

    raw: str
    position: LogPosition


def last_event_id(request: Request) -> Asked | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or not raw.strip():
        return None
    return Asked(raw.strip(), parse_last_event_id(raw))


def bad_id(exc: BadEventIdError) -> JSONResponse:
    return problem(
        400,
        "Bad Request",
        f"Last-Event-ID {exc.args[0]!r} is not an event id (<epoch>-<n>, as this service sent)",
    )


@dataclass(frozen=True, slots=True)
class Context:
    """What a stream body needs from the app's state."""

    worker: AsyncTaskWorker
    manager: EventManager
    limits: StreamLimits

    @property
    def epoch(self) -> str:
        return self.worker.log_epoch

    @property
    def reader(self) -> AsyncEngine:
        return self.worker.engines.reader

    @property
    def cursor_interval(self) -> float | None:
        return self.limits.cursor_interval


def context_of(request: Request) -> Context:
    return Context(request.state.worker, request.state.events, request.state.streams)


def counted(request: Request, limits: StreamLimits, body: AsyncIterator[bytes]) -> Response:
    """`body` as an event stream holding one of the limited slots until it ends; 503 with
    Retry-After (the body never started) when none is free."""
    client = request.client.host if request.client is not None else "unknown"
    refused = limits.take(client)
    if refused is not None:
        return problem_response(
            503,
            "too-many-streams",
            f"{refused}; try again later",
            headers={"Retry-After": str(limits.retry_after)},
        )
    return event_stream_response(body, on_close=lambda: limits.give_back(client))


@asynccontextmanager
async def subscribed(context: Context, event_filter: EventFilter) -> AsyncIterator[Subscription]:
    """A subscription that closes itself after the stream lifetime, ending the stream cleanly
    (the client resumes with Last-Event-ID) before the server's read timeout cuts it."""
    lifetime = context.limits.lifetime
    async with context.manager.subscribe(event_filter) as sub:
        loop = asyncio.get_running_loop()
        timer = None if lifetime is None else loop.call_later(lifetime, sub.end, DropReason.CLOSED)
        try:
            yield sub
        finally:
            if timer is not None:
                timer.cancel()


async def encoded(
    items: AsyncIterator[StreamItem], epoch: str, *, end_on_reset: bool = False
) -> AsyncIterator[bytes]:
    """Stream items as SSE bytes; a subscriber dropped for falling behind ends the stream.
    With `end_on_reset` a reset ends the stream too (the client reloads, then resumes)."""
    try:
        async for item in items:
            yield encode_item(item, epoch).encode()
            if end_on_reset and isinstance(item, Reset):
                return
    except SubscriberDropped as exc:
        logger.info("SSE stream ended: %s", exc.reason)
        yield f": dropped ({exc.reason.value}), resume with Last-Event-ID\r\n\r\n".encode()


def encode_item(item: StreamItem, epoch: str) -> str:
    if isinstance(item, Cursor):
        return cursor_message(epoch, item.id)
    if isinstance(item, Reset):
        return reset_message(item.reason, sse_id(epoch, item.since), epoch, item.cursor)
    return encode_events(item, epoch)
