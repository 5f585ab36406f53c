"""Resumable event streams: replay what a client missed from the log, then go on live.

The order makes the switch exact: subscribe first, then read the log after the client's
Last-Event-ID page by page up to its newest row, then deliver live events skipping every id
already replayed. An event committed during the switch is either in a replayed page or
arrives live with a larger id (the writer publishes in commit order), so none is lost or
repeated.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.events.filters import EventFilter
from app.events.log import REPLAY_PAGE, TERMINAL_EVENT_TYPES, TaskEvent, log_bounds, read_events
from app.events.manager import DropReason, SubscriberDropped, Subscription

LIVE_BATCH = 200


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a stream that asked for events after `requested` starts: after `cursor`.
    `reset` names why the requested id could not be used ("expired": events after it were
    pruned; "unknown": it is newer than the log), and then `cursor` is the log's `newest`."""

    requested: int
    cursor: int
    reset: str | None = None
    newest: int = 0


async def plan_resume(engine: AsyncEngine, last_event_id: int) -> Resume:
    """Check a client's Last-Event-ID against the log's bounds."""
    oldest, newest = await log_bounds(engine)
    newest = newest or 0
    if last_event_id > newest:
        return Resume(last_event_id, newest, "unknown", newest)
    if oldest is not None and last_event_id < oldest - 1:
        return Resume(last_event_id, newest, "expired", newest)
    return Resume(last_event_id, last_event_id, None, newest)


async def replay(
    engine: AsyncEngine, event_filter: EventFilter, after: int
) -> AsyncGenerator[list[TaskEvent], None]:
    """Logged events matching `event_filter` with id > `after`, in pages, oldest first."""
    while True:
        page = await read_events(
            engine,
            after,
            task_id=event_filter.task_id,
            task_type=event_filter.task_type,
            group=event_filter.group,
            limit=REPLAY_PAGE,
        )
        if page:
            yield page
            after = page[-1].id or after
        if len(page) < REPLAY_PAGE:
            return


async def live(sub: Subscription, after: int) -> AsyncGenerator[list[TaskEvent], None]:
    """Batches of live events, skipping logged ones with id <= `after` (already sent).
    Ends when the subscription is closed; raises SubscriberDropped if it fell behind."""
    while True:
        try:
            batch = await sub.get_batch(LIVE_BATCH)
        except SubscriberDropped as exc:
            if exc.reason is DropReason.CLOSED:
                return
            raise
        fresh = [e for e in batch if e.id is None or e.id > after]
        if fresh:
            yield fresh


async def replay_then_live(
    engine: AsyncEngine, sub: Subscription, after: int | None
) -> AsyncGenerator[list[TaskEvent], None]:
    """Everything matching `sub.filter` after id `after` (None: from now on), exactly once."""
    cursor = after if after is not None else 0
    if after is not None:
        async for page in replay(engine, sub.filter, after):
            cursor = page[-1].id or cursor
            yield page
    async for batch in live(sub, cursor):
        yield batch


async def until_terminal(
    batches: AsyncGenerator[list[TaskEvent], None],
) -> AsyncGenerator[list[TaskEvent], None]:
    """Pass batches through up to and including the first terminal event, then stop."""
    async for batch in batches:
        for index, event in enumerate(batch):
            if event.type in TERMINAL_EVENT_TYPES:
                yield batch[: index + 1]
                return
        yield batch
