"""EventManager: in-process fan-out of committed task events to subscribers.

`publish` is the worker's event sink: it runs in the writer right after a commit, so it is
synchronous, never awaits and never waits for a reader. Every subscriber has a bounded queue;
one that falls behind is dropped (its reader gets `SubscriberDropped`) instead of slowing the
writer, other readers or growing memory. A dropped SSE client resumes from the event log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from enum import StrEnum
from types import TracebackType
from typing import Self

from app.events.filters import ALL_EVENTS, GROUP_KEY, EventFilter
from app.events.log import TaskEvent

logger = logging.getLogger(__name__)
DEFAULT_MAX_QUEUE = 1000
IndexKey = tuple[str, str] | None


class DropReason(StrEnum):
    SLOW = "slow"  # the queue filled up: the reader fell behind
    CLOSED = "closed"  # the subscription or the whole manager was closed


class SubscriberDropped(Exception):
    """The subscription ended before its reader stopped reading; `reason` says why."""

    def __init__(self, reason: DropReason) -> None:
        super().__init__(f"subscription ended: {reason.value}")
        self.reason = reason


class Subscription:
    """A reader's bounded queue of matching events. Iterate it (`async for`), or call `get`.

    Iteration ends quietly when the subscription is closed and raises `SubscriberDropped`
    (reason SLOW) once the events queued before a drop are read."""

    def __init__(self, manager: EventManager, event_filter: EventFilter, max_queue: int) -> None:
        self.filter = event_filter
        self.max_queue = max_queue
        self._manager = manager
        # The manager's newest published id when this subscription began: every later
        # event reaches its queue, none before it does (0 when nothing was published yet).
        self.started_after = manager.last_id
        self.first_offered: int | None = None  # id of the first logged event it was offered
        self._queue: asyncio.Queue[TaskEvent | None] = asyncio.Queue(max_queue + 1)
        self._reason: DropReason | None = None

    @property
    def published_up_to(self) -> int:
        """The newest logged id its manager has published (0: none yet)."""
        return self._manager.last_id

    @property
    def idle(self) -> bool:
        """Nothing is queued: every matching event published so far has been read."""
        return self._queue.empty()

    @property
    def reason(self) -> DropReason | None:
        """Why the subscription ended, or None while it is live."""
        return self._reason

    def offer(self, event: TaskEvent) -> bool:
        """Queue `event` without waiting; False when the subscription has ended (now or
        before). A full queue ends it with reason SLOW."""
        if self._reason is not None:
            return False
        if self._queue.qsize() >= self.max_queue:
            self.end(DropReason.SLOW)
            return False
        if self.first_offered is None and event.id is not None:
            self.first_offered = event.id
        self._queue.put_nowait(event)
        return True

    def end(self, reason: DropReason) -> None:
        """Stop taking events and wake a waiting reader. Idempotent: the first reason stays."""
        if self._reason is not None:
            return
        self._reason = reason
        if not self._queue.full():
            self._queue.put_nowait(None)  # wakes a reader blocked on an empty queue

    def close(self) -> None:
        """Unsubscribe. Safe to call more than once."""
        self.end(DropReason.CLOSED)
        self._manager.discard(self)

    async def get(self) -> TaskEvent:
        """The next event; raises SubscriberDropped once the subscription has ended."""
        while True:
            if self._reason is DropReason.CLOSED:
                raise SubscriberDropped(DropReason.CLOSED)
            if self._reason is not None and self._queue.empty():
                raise SubscriberDropped(self._reason)
            item = await self._queue.get()
            if item is not None:
                return item

    async def get_batch(self, max_items: int = 100) -> list[TaskEvent]:
        """Wait for one event, then take up to `max_items` already queued, without waiting."""
        batch = [await self.get()]
        while len(batch) < max_items and self._reason is not DropReason.CLOSED:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is not None:
                batch.append(item)
        return batch

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> TaskEvent:
        try:
            return await self.get()
        except SubscriberDropped as exc:
            if exc.reason is DropReason.CLOSED:
                raise StopAsyncIteration from None
            raise

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _index_key(event_filter: EventFilter) -> IndexKey:
    """The most selective field a filter sets: a subscription is filed under it only."""
    if event_filter.task_id is not None:
        return ("task", event_filter.task_id)
    if event_filter.group is not None:
        return ("group", event_filter.group)
    if event_filter.task_type is not None:
        return ("type", event_filter.task_type)
    return None


class EventManager:
    """Publish/subscribe for task events within one process. Build one per app (lifespan)."""

    def __init__(self, *, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.max_queue = max_queue
        self.dropped = 0
        # The newest logged id published so far (0: none yet). Publishing follows commit
        # order, so a subscriber whose queue is empty has been handed every event of its
        # filter up to here: the cursor a quiet stream may send (see app/events/stream.py).
        self.last_id = 0
        self._index: dict[IndexKey, set[Subscription]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._index.values())

    def subscribe(
        self, event_filter: EventFilter = ALL_EVENTS, *, max_queue: int | None = None
    ) -> Subscription:
        """A live subscription from this moment on; already ended if the manager is closed."""
        sub = Subscription(self, event_filter, max_queue or self.max_queue)
        if self._closed:
            sub.end(DropReason.CLOSED)
        else:
            self._index.setdefault(_index_key(event_filter), set()).add(sub)
        return sub

    def discard(self, sub: Subscription) -> None:
        key = _index_key(sub.filter)
        subs = self._index.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._index[key]

    def publish(self, events: Sequence[TaskEvent]) -> None:
        """Hand `events` (in order) to every matching subscriber. Never waits and never
        raises: it runs inside the database writer."""
        for event in reversed(events):
            if event.id is not None:
                self.last_id = max(self.last_id, event.id)
                break
        if not self._index:
            return
        try:
            self._fan_out(events)
        except Exception:
            logger.exception("publishing %s events failed", len(events))

    def _fan_out(self, events: Sequence[TaskEvent]) -> None:
        dropped: set[Subscription] = set()
        for event in events:
            for sub in self._candidates(event):
                if sub.filter.matches(event) and not sub.offer(event):
                    dropped.add(sub)
        for sub in dropped:
            self.dropped += sub.reason is DropReason.SLOW
            logger.warning("dropped a subscriber (%s) of %s", sub.reason, sub.filter)
            self.discard(sub)

    def _candidates(self, event: TaskEvent) -> Iterator[Subscription]:
        group = event.payload.get(GROUP_KEY)
        keys: list[IndexKey] = [None, ("task", event.task_id), ("type", event.task_type)]
        if isinstance(group, str):
            keys.append(("group", group))
        for key in keys:
            yield from self._index.get(key, ())

    def close(self) -> None:
        """End every subscription now (shutdown); later subscriptions start ended."""
        self._closed = True
        index, self._index = self._index, {}
        for subs in index.values():
            for sub in subs:
                sub.end(DropReason.CLOSED)
