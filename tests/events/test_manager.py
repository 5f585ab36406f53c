"""EventManager: filters, bounded queues that drop a slow reader, close, and a publish that
never waits for anyone."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.events.filters import EventFilter
from app.events.log import EventType, TaskEvent
from app.events.manager import DropReason, EventManager, SubscriberDropped, Subscription


def ev(n: int, task_id: str = "t1", task_type: str = "echo", group: str | None = None) -> TaskEvent:
    payload = {"status": "pending"} if group is None else {"status": "pending", "group": group}
    return TaskEvent(EventType.QUEUED, task_id, task_type, 1_000_000 + n, payload, n)


async def queued_ids(sub: Subscription) -> list[int | None]:
    """The ids of the events queued for `sub` right now."""
    try:
        return [e.id for e in await asyncio.wait_for(sub.get_batch(1000), 0.05)]
    except TimeoutError:
        return []


async def take(sub: Subscription, n: int) -> list[TaskEvent]:
    got: list[TaskEvent] = []
    async for event in sub:
        got.append(event)
        if len(got) == n:
            break
    return got


@pytest.mark.parametrize(
    ("event_filter", "expected"),
    [
        (EventFilter(), [1, 2, 3, 4]),
        (EventFilter(task_id="a"), [1, 2]),
        (EventFilter(task_type="mail"), [2, 3]),
        (EventFilter(group="g1"), [1, 3]),
        (EventFilter(task_type="mail", group="g1"), [3]),
        (EventFilter(task_id="a", group="g2"), []),
    ],
)
async def test_filters_pick_matching_events_in_order(
    event_filter: EventFilter, expected: list[int]
) -> None:
    manager = EventManager()
    sub = manager.subscribe(event_filter)
    manager.publish(
        [
            ev(1, "a", "echo", "g1"),
            ev(2, "a", "mail"),
            ev(3, "b", "mail", "g1"),
            ev(4, "c", "echo", "g2"),
        ]
    )
    assert await queued_ids(sub) == expected


async def test_every_subscriber_gets_its_own_copy() -> None:
    manager = EventManager()
    subs = [manager.subscribe() for _ in range(3)]
    manager.publish([ev(1), ev(2)])
    for sub in subs:
        assert [e.id for e in await take(sub, 2)] == [1, 2]
    assert manager.subscriber_count == 3


async def test_a_reader_that_falls_behind_is_dropped_after_its_queued_events() -> None:
    manager = EventManager(max_queue=5)
    slow, fast = manager.subscribe(), manager.subscribe(max_queue=100)
    manager.publish([ev(n) for n in range(1, 9)])
    assert slow.reason is DropReason.SLOW
    assert manager.dropped == 1 and manager.subscriber_count == 1
    got = [await slow.get() for _ in range(5)]
    assert [e.id for e in got] == [1, 2, 3, 4, 5]
    with pytest.raises(SubscriberDropped) as caught:
        await slow.get()
    assert caught.value.reason is DropReason.SLOW
    assert [e.id for e in await take(fast, 8)] == list(range(1, 9))


async def test_iterating_a_dropped_subscription_raises() -> None:
    manager = EventManager(max_queue=2)
    sub = manager.subscribe()
    manager.publish([ev(1), ev(2), ev(3)])
    with pytest.raises(SubscriberDropped):
        async for _ in sub:
            pass


async def test_close_ends_waiting_readers_promptly_and_later_subscriptions() -> None:
    manager = EventManager()
    subs = [manager.subscribe(EventFilter(task_id=str(i))) for i in range(10)]
    readers = [asyncio.create_task(take(sub, 1)) for sub in subs]
    await asyncio.sleep(0)
    manager.close()
    results = await asyncio.wait_for(asyncio.gather(*readers), 1)
    assert results == [[]] * 10
    assert manager.subscriber_count == 0
    late = manager.subscribe()
    assert late.reason is DropReason.CLOSED
    assert [e async for e in late] == []
    manager.publish([ev(1)])  # a closed manager ignores events


async def test_closing_a_subscription_unsubscribes_it() -> None:
    manager = EventManager()
    async with manager.subscribe(EventFilter(group="g")) as sub:
        assert manager.subscriber_count == 1
    assert manager.subscriber_count == 0
    assert sub.reason is DropReason.CLOSED
    with pytest.raises(SubscriberDropped):
        await sub.get()


async def test_get_batch_takes_what_is_queued_without_waiting() -> None:
    manager = EventManager()
    sub = manager.subscribe()
    manager.publish([ev(n) for n in range(1, 6)])
    assert [e.id for e in await sub.get_batch(3)] == [1, 2, 3]
    assert [e.id for e in await sub.get_batch(3)] == [4, 5]


def _publish_timed(manager: EventManager, events: list[TaskEvent]) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), 100):
        manager.publish(events[i : i + 100])
    return time.perf_counter() - started


def _with_readers(stuck: bool) -> tuple[EventManager, list[Subscription]]:
    manager = EventManager(max_queue=1000)
    subs = [manager.subscribe(EventFilter(task_id=f"t{i}"), max_queue=10**6) for i in range(50)]
    if stuck:
        subs.append(manager.subscribe())
    return manager, subs


async def test_a_reader_that_never_reads_does_not_slow_publish() -> None:
    events = [ev(n, task_id=f"t{n % 50}") for n in range(1, 100_001)]
    baseline = _publish_timed(_with_readers(stuck=False)[0], events)
    manager, subs = _with_readers(stuck=True)
    elapsed = _publish_timed(manager, events)
    assert subs[-1].reason is DropReason.SLOW  # dropped after its 1000 queued events
    assert all(s.reason is None for s in subs[:-1])
    assert len(await subs[0].get_batch(10**6)) == 2000
    print(f"publish 100k events: {elapsed:.3f}s with a stuck reader, {baseline:.3f}s without")
    assert elapsed < 2 * baseline + 0.1
    assert elapsed < 5.0


async def test_publish_survives_a_broken_event() -> None:
    manager = EventManager()
    sub = manager.subscribe(EventFilter(group="g"))
    broken = TaskEvent(EventType.QUEUED, "t", "echo", 0, None, 1)  # type: ignore[arg-type]
    manager.publish([broken])  # logged, never raised into the writer
    manager.publish([ev(2, group="g")])
    assert (await sub.get()).id == 2
