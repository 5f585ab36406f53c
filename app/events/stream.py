"""Resumable event streams: replay what a client missed from the log, then go on live.

The order makes the switch exact: subscribe first, then read the log after the client's
Last-Event-ID page by page up to its newest row, then deliver live events skipping every id
already replayed. An event committed during the switch is either in a replayed page or
arrives live with a larger id (the writer publishes in commit order), so none is lost or
repeated.

A stream yields batches of events and two kinds of marks: `Cursor` (everything matching up
to this id has been delivered: a quiet filtered stream's resume point, sent at most every
`cursor_interval` seconds and only when the log moved) and `Reset` (events after `since`
were pruned before this stream could read them: the client must reload its state).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.events.epoch import LogPosition
from app.events.filters import EventFilter
from app.events.log import REPLAY_PAGE, TERMINAL_EVENT_TYPES, TaskEvent, log_bounds, read_page
from app.events.manager import DropReason, SubscriberDropped, Subscription

LIVE_BATCH = 200
EXPIRED, UNKNOWN, EPOCH = "expired", "unknown", "epoch"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Every event the stream's filter matches up to log id `id` has been delivered."""

    id: int


@dataclass(frozen=True, slots=True)
class Reset:
    """Events after log id `since` cannot be delivered (`reason`); the stream goes on after
    `cursor` (the log's newest id when this was found)."""

    reason: str
    since: int
    cursor: int


StreamItem = list[TaskEvent] | Cursor | Reset


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a stream that asked for events after `position` starts: after `cursor`.
    `reset` names why the position could not be used ("epoch": it is another log's;
    "expired": events after it were pruned; "unknown": it is newer than the log), and then
    `cursor` is the log's newest id."""

    cursor: int
    reset: str | None = None


async def plan_resume(engine: AsyncEngine, position: LogPosition, epoch: str) -> Resume:
    """Check a client's Last-Event-ID against this log's epoch and bounds. A bare 0 (no
    epoch) asks for the whole log."""
    oldest, newest = await log_bounds(engine)
    newest = newest or 0
    from_start = position.epoch is None and position.id == 0
    if position.epoch != epoch and not from_start:
        return Resume(newest, EPOCH)
    if position.id > newest:
        return Resume(newest, UNKNOWN)
    if oldest is not None and position.id < oldest - 1:
        return Resume(newest, EXPIRED)
    return Resume(position.id)


async def replay(
    engine: AsyncEngine, event_filter: EventFilter, after: int
) -> AsyncGenerator[list[TaskEvent] | Reset, None]:
    """Logged events matching `event_filter` with id > `after`, in pages, oldest first.
    Each page is checked against the log's bounds read with it: if retention deleted rows
    this replay had not read yet, it yields a Reset (reason "expired") and stops."""
    while True:
        page = await read_page(
            engine,
            after,
            task_id=event_filter.task_id,
            task_type=event_filter.task_type,
            group=event_filter.group,
            limit=REPLAY_PAGE,
        )
        if page.oldest is not None and page.oldest > after + 1:
            yield Reset(EXPIRED, after, page.newest or after)
            return
        if page.events:
            yield page.events
            after = page.events[-1].id or after
        if len(page.events) < REPLAY_PAGE:
            return


class _Cursors:
    """When a live stream owes its client a cursor: the log moved past the last id sent,
    the subscriber's queue is empty (so every matching event up to the manager's newest
    has been handed on), and `interval` seconds passed since the last id or cursor sent."""

    def __init__(self, sub: Subscription, sent: int, interval: float | None) -> None:
        self.sub, self.sent, self.interval = sub, sent, interval
        self.loop = asyncio.get_running_loop()
        self.due_at = self.loop.time() + (interval or 0.0)

    def wait(self) -> float | None:
        if self.interval is None:
            return None
        return max(self.due_at - self.loop.time(), 0.0)

    def sent_up_to(self, event_id: int) -> None:
        self.sent = max(self.sent, event_id)
        self.due_at = self.loop.time() + (self.interval or 0.0)

    def due(self) -> Cursor | None:
        if self.interval is None or self.loop.time() < self.due_at:
            return None
        self.due_at = self.loop.time() + self.interval
        newest = self.sub.published_up_to
        if newest <= self.sent or not self.sub.idle:
            return None
        self.sent = newest
        return Cursor(newest)


async def _next_batch(sub: Subscription, wait: float | None) -> list[TaskEvent]:
    """The next live batch; [] when none came within `wait` seconds (None: no limit)."""
    try:
        async with asyncio.timeout(wait):
            return await sub.get_batch(LIVE_BATCH)
    except TimeoutError:
        return []


async def live(
    sub: Subscription, after: int, cursor_interval: float | None = None
) -> AsyncGenerator[list[TaskEvent] | Cursor, None]:
    """Batches of live events, skipping logged ones with id <= `after` (already sent), and
    a Cursor when one is due (see _Cursors). Ends when the subscription is closed; raises
    SubscriberDropped if it fell behind."""
    cursors = _Cursors(sub, after, cursor_interval)
    while True:
        try:
            batch = await _next_batch(sub, cursors.wait())
        except SubscriberDropped as exc:
            if exc.reason is DropReason.CLOSED:
                return
            raise
        fresh = [e for e in batch if e.id is None or e.id > after]
        if fresh:
            yield fresh
            logged = [e.id for e in fresh if e.id is not None]
            if logged:
                cursors.sent_up_to(logged[-1])
        mark = cursors.due()
        if mark is not None:
            yield mark


async def replay_then_live(
    engine: AsyncEngine,
    sub: Subscription,
    after: int | None,
    cursor_interval: float | None = None,
) -> AsyncGenerator[StreamItem, None]:
    """Everything matching `sub.filter` after id `after` (None: from now on), exactly once;
    after a Reset, live events after its cursor."""
    cursor = after if after is not None else 0
    if after is not None:
        async for item in replay(engine, sub.filter, after):
            yield item
            cursor = item.cursor if isinstance(item, Reset) else (item[-1].id or cursor)
    async for batch in live(sub, cursor, cursor_interval):
        yield batch


async def until_terminal(
    items: AsyncIterator[StreamItem],
) -> AsyncGenerator[StreamItem, None]:
    """Pass items through up to and including the first terminal event, then stop."""
    async for item in items:
        if not isinstance(item, list):
            yield item
            continue
        for index, event in enumerate(item):
            if event.type in TERMINAL_EVENT_TYPES:
                yield item[: index + 1]
                return
        yield item
