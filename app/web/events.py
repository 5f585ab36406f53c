"""Server-Sent-Events routes: `GET /events` (all tasks, or filtered by task_type, group or
task_id) and `GET /tasks/{task_id}/events` (one task: its current state, then its events up
to the terminal one). Both resume after `Last-Event-ID` (header, or `?last_event_id=`) from
the event log without gap or duplicate, and open with a message that carries an id (a cursor,
a reset or the snapshot), so a client always has a position to resume from; see
docs/events.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.cache.jsonable import jsonable
from app.events.epoch import BadEventIdError, LogPosition, sse_id
from app.events.filters import EventFilter
from app.events.log import newest_event_id
from app.events.manager import Subscription
from app.events.sse import (
    SNAPSHOT,
    capped,
    cursor_message,
    encode,
    iso,
    reset_message,
    retry_hint,
)
from app.events.stream import (
    StreamItem,
    live,
    plan_resume,
    replay_then_live,
    until_terminal,
)
from app.web.event_streams import (
    Asked,
    Context,
    bad_id,
    context_of,
    counted,
    encoded,
    last_event_id,
    problem,
    subscribed,
)
from app.worker.status import TaskInfo, TaskStatus

# -- GET /events -------------------------------------------------------------------------------


async def stream_events(request: Request) -> Response:
    """Live events of every task matching the query filters, resumable."""
    context = context_of(request)
    try:
        asked = last_event_id(request)
    except BadEventIdError as exc:
        return bad_id(exc)
    params = request.query_params
    event_filter = EventFilter(
        task_id=params.get("task_id") or None,
        task_type=params.get("task_type") or None,
        group=params.get("group") or None,
    )
    return counted(request, context.limits, _events_body(context, event_filter, asked))


async def _events_body(
    context: Context, event_filter: EventFilter, asked: Asked | None
) -> AsyncIterator[bytes]:
    engine, epoch, interval = context.reader, context.epoch, context.cursor_interval
    async with subscribed(context, event_filter) as sub:
        yield retry_hint().encode()
        items: AsyncIterator[StreamItem]
        if asked is None:
            start = await _start_of(sub, engine, from_log=context.worker.events_follow_log)
            yield cursor_message(epoch, start).encode()
            items = live(sub, start, interval)
        else:
            plan = await plan_resume(engine, asked.position, epoch)
            if plan.reset is not None:
                yield reset_message(plan.reset, asked.raw, epoch, plan.cursor).encode()
                items = live(sub, plan.cursor, interval)
            else:
                yield cursor_message(epoch, plan.cursor).encode()
                items = replay_then_live(engine, sub, plan.cursor, interval)
        async for chunk in encoded(items, epoch):
            yield chunk


async def _start_of(sub: Subscription, engine: AsyncEngine, *, from_log: bool) -> int:
    """Where a stream without Last-Event-ID starts, exactly: events committed before it
    opened never come, every later one does.

    Where events are published at their commit (SQLite): after the newest id published
    before it subscribed (everything later reaches its queue). When nothing was published
    yet in this process, the log's newest id, or just before the first event its queue got
    if that is older (that one was published after it subscribed).

    Where they reach it from the log (PostgreSQL): after the log's newest committed id, read
    now that it has subscribed. Ids follow commit order, so every id up to that one is
    committed, and every later one commits after this read and is published (by the log
    follower, after its commit) into the queue; this process's follower may lag behind the
    log, so what it has published says nothing about what committed."""
    if from_log:
        return await newest_event_id(engine) or 0
    if sub.started_after:
        return sub.started_after
    newest = await newest_event_id(engine) or 0
    first = sub.first_offered
    return first - 1 if first is not None and first <= newest else newest


# -- GET /tasks/{task_id}/events ---------------------------------------------------------------


async def stream_task_events(request: Request) -> Response:
    """One task's current state, then its events until it finishes. A client that resumes
    after the task's terminal event gets 204 (EventSource stops reconnecting)."""
    context = context_of(request)
    task_id = request.path_params["task_id"]
    try:
        asked = last_event_id(request)
    except BadEventIdError as exc:
        return bad_id(exc)
    info = await context.worker.get_task_info(task_id)
    if info is None:
        return problem(404, "Not Found", f"no task with id {task_id!r}")
    if asked is not None and await _finished_before(context, info, asked.position):
        return Response(status_code=204)
    return counted(request, context.limits, _task_body(context, task_id, asked))


async def _finished_before(context: Context, info: TaskInfo, position: LogPosition) -> bool:
    """The task is terminal and the client (of this log) has already seen its last event."""
    if not info.is_terminal or position.epoch != context.epoch:
        return False
    newest = await newest_event_id(context.worker.engines.reader, info.id)
    return (newest or 0) <= position.id


async def _task_body(context: Context, task_id: str, asked: Asked | None) -> AsyncIterator[bytes]:
    engine, epoch, interval = context.reader, context.epoch, context.cursor_interval
    async with subscribed(context, EventFilter(task_id=task_id)) as sub:
        yield retry_hint().encode()
        plan = await plan_resume(engine, asked.position, epoch) if asked is not None else None
        items: AsyncIterator[StreamItem]
        if plan is not None and plan.reset is None:
            yield cursor_message(epoch, plan.cursor).encode()
            items = replay_then_live(engine, sub, plan.cursor, interval)
        else:
            if plan is not None and asked is not None:
                yield reset_message(str(plan.reset), asked.raw, epoch, plan.cursor).encode()
            snapshot = await _snapshot(context, task_id)
            if snapshot is None:
                return
            yield snapshot.message
            if snapshot.terminal:
                return
            items = live(sub, snapshot.cursor, interval)
        async for chunk in encoded(until_terminal(items), epoch, end_on_reset=True):
            yield chunk


@dataclass(frozen=True, slots=True)
class _Snapshot:
    message: bytes
    cursor: int
    terminal: bool


async def _snapshot(context: Context, task_id: str) -> _Snapshot | None:
    """The task's current state as one message whose id is the log's newest id, read before
    the state: a later event arrives live (it may repeat a state; none is missed). Always
    carrying an id, a snapshot of a finished task makes the reconnect a 204."""
    worker = context.worker
    cursor = await newest_event_id(worker.engines.reader) or 0
    info = await worker.get_task_info(task_id)
    if info is None:
        return None
    data = snapshot_data(info, cursor)
    message = encode(data, SNAPSHOT, sse_id(context.epoch, cursor)).encode()
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
