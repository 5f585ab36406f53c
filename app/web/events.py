"""Server-Sent-Events routes: `GET /events` (all tasks, or filtered by task_type, group or
task_id) and `GET /tasks/{task_id}/events` (one task: its current state, then its events up
to the terminal one). Both resume after `Last-Event-ID` (header, or `?last_event_id=`) from
the event log without gap or duplicate; see docs/events.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.cache.jsonable import jsonable
from app.events.filters import EventFilter
from app.events.log import TaskEvent, newest_event_id
from app.events.manager import DropReason, EventManager, SubscriberDropped, Subscription
from app.events.sse import (
    SNAPSHOT,
    capped,
    encode,
    encode_events,
    event_stream_response,
    iso,
    reset_message,
    retry_hint,
)
from app.events.stream import live, plan_resume, replay_then_live, until_terminal
from app.web.errors import problem_response
from app.web.streams import RETRY_AFTER_SECONDS, StreamLimits
from app.worker.core import AsyncTaskWorker
from app.worker.status import TaskInfo, TaskStatus

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


class BadLastEventIdError(ValueError):
    """Last-Event-ID must be a non-negative integer (an id this service sent)."""


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadLastEventIdError(raw) from None
    if value < 0:
        raise BadLastEventIdError(raw)
    return value


def _bad_id(exc: BadLastEventIdError) -> JSONResponse:
    return _problem(400, "Bad Request", f"Last-Event-ID {exc.args[0]!r} is not an event id")


def _state(request: Request) -> tuple[AsyncTaskWorker, EventManager, StreamLimits]:
    worker: AsyncTaskWorker = request.state.worker
    events: EventManager = request.state.events
    limits: StreamLimits = request.state.streams
    return worker, events, limits


def _counted(request: Request, limits: StreamLimits, body: AsyncIterator[bytes]) -> Response:
    """`body` as an event stream holding one of the limited slots until it ends; 503 with
    Retry-After (the body never started) when none is free."""
    client = request.client.host if request.client is not None else "unknown"
    refused = limits.take(client)
    if refused is not None:
        return problem_response(
            503,
            "too-many-streams",
            f"{refused}; try again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return event_stream_response(body, on_close=lambda: limits.give_back(client))


@asynccontextmanager
async def _subscribed(
    manager: EventManager, event_filter: EventFilter, lifetime: float | None
) -> AsyncIterator[Subscription]:
    """A subscription that closes itself after `lifetime` seconds, ending the stream cleanly
    (the client resumes with Last-Event-ID) before the server's read timeout cuts it."""
    async with manager.subscribe(event_filter) as sub:
        loop = asyncio.get_running_loop()
        timer = None if lifetime is None else loop.call_later(lifetime, sub.end, DropReason.CLOSED)
        try:
            yield sub
        finally:
            if timer is not None:
                timer.cancel()


# -- GET /events -------------------------------------------------------------------------------


async def stream_events(request: Request) -> Response:
    """Live events of every task matching the query filters, resumable."""
    worker, manager, limits = _state(request)
    try:
        last_id = _last_event_id(request)
    except BadLastEventIdError as exc:
        return _bad_id(exc)
    params = request.query_params
    event_filter = EventFilter(
        task_id=params.get("task_id") or None,
        task_type=params.get("task_type") or None,
        group=params.get("group") or None,
    )
    body = _events_body(worker.engines.reader, manager, event_filter, last_id, limits.lifetime)
    return _counted(request, limits, body)


async def _events_body(
    engine: AsyncEngine,
    manager: EventManager,
    event_filter: EventFilter,
    last_id: int | None,
    lifetime: float | None,
) -> AsyncIterator[bytes]:
    async with _subscribed(manager, event_filter, lifetime) as sub:
        yield retry_hint().encode()
        after = last_id
        if last_id is not None:
            plan = await plan_resume(engine, last_id)
            if plan.reset is not None:
                yield reset_message(plan.reset, plan.requested, plan.newest).encode()
            after = plan.cursor
        async for chunk in _encoded(replay_then_live(engine, sub, after)):
            yield chunk


# -- GET /tasks/{task_id}/events ---------------------------------------------------------------


async def stream_task_events(request: Request) -> Response:
    """One task's current state, then its events until it finishes. A client that resumes
    after the task's terminal event gets 204 (EventSource stops reconnecting)."""
    worker, manager, limits = _state(request)
    task_id = request.path_params["task_id"]
    try:
        last_id = _last_event_id(request)
    except BadLastEventIdError as exc:
        return _bad_id(exc)
    info = await worker.get_task_info(task_id)
    if info is None:
        return _problem(404, "Not Found", f"no task with id {task_id!r}")
    if last_id is not None and await _finished_before(worker, info, last_id):
        return Response(status_code=204)
    body = _task_body(worker, manager, task_id, last_id, limits.lifetime)
    return _counted(request, limits, body)


async def _finished_before(worker: AsyncTaskWorker, info: TaskInfo, last_id: int) -> bool:
    """The task is terminal and the client has already seen its last event."""
    if not info.is_terminal:
        return False
    newest = await newest_event_id(worker.engines.reader, info.id)
    return (newest or 0) <= last_id


async def _task_body(
    worker: AsyncTaskWorker,
    manager: EventManager,
    task_id: str,
    last_id: int | None,
    lifetime: float | None,
) -> AsyncIterator[bytes]:
    engine = worker.engines.reader
    async with _subscribed(manager, EventFilter(task_id=task_id), lifetime) as sub:
        yield retry_hint().encode()
        plan = await plan_resume(engine, last_id) if last_id is not None else None
        if plan is not None and plan.reset is None:
            batches = replay_then_live(engine, sub, plan.cursor)
        else:
            if plan is not None:
                yield reset_message(str(plan.reset), plan.requested, plan.newest).encode()
            snapshot = await _snapshot(worker, task_id)
            if snapshot is None:
                return
            yield snapshot.message
            if snapshot.terminal:
                return
            batches = live(sub, snapshot.cursor)
        async for chunk in _encoded(until_terminal(batches)):
            yield chunk


async def _encoded(batches: AsyncIterator[list[TaskEvent]]) -> AsyncIterator[bytes]:
    """Batches as SSE bytes; a subscriber dropped for falling behind ends the stream."""
    try:
        async for batch in batches:
            yield encode_events(batch).encode()
    except SubscriberDropped as exc:
        logger.info("SSE stream ended: %s", exc.reason)
        yield f": dropped ({exc.reason.value}), resume with Last-Event-ID\r\n\r\n".encode()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    message: bytes
    cursor: int
    terminal: bool


async def _snapshot(worker: AsyncTaskWorker, task_id: str) -> _Snapshot | None:
    """The task's current state as one message whose id is the log's newest id, read before
    the state: a later event arrives live (it may repeat a state; none is missed). Always
    carrying an id, a snapshot of a finished task makes the reconnect a 204."""
    cursor = await newest_event_id(worker.engines.reader) or 0
    info = await worker.get_task_info(task_id)
    if info is None:
        return None
    message = encode(snapshot_data(info, cursor), SNAPSHOT, cursor).encode()
    return _Snapshot(message, cursor, info.is_terminal)


def snapshot_data(info: TaskInfo, cursor: int) -> dict[str, Any]:
    """A task's state in the shape of an event's data (type "task.snapshot")."""
    return capped(
        {
            "id": cursor,
            "type": SNAPSHOT,
            "task_id": info.id,
            "task_type": info.task_type,
            "timestamp": datetime.now(UTC).isoformat(),
            "status": info.status.value,
            "progress": info.progress,
            "attempt": info.attempts,
            "max_attempts": info.max_attempts,
            "priority": info.priority,
            "group": info.metadata.get("group"),
            "created_at": iso(info.created_at),
            "started_at": iso(info.started_at),
            "completed_at": iso(info.completed_at),
            "result": jsonable(info.result) if info.status is TaskStatus.COMPLETED else None,
            "error": info.error,
            "from_cache": info.from_cache,
        }
    )


routes: list[BaseRoute] = [
    Route("/events", stream_events, methods=["GET"], name="events"),
    Route("/tasks/{task_id}/events", stream_task_events, methods=["GET"], name="task_events"),
]
