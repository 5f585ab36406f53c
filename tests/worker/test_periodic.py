"""Periodic task types through the public API: `register(..., cron=... | every=...)`, each
slot queued once (its idempotency key, in the transaction that records the schedule's
progress) across restarts and database faults, the missed-slot policies after a real
downtime (stop, wait, start), and `worker.schedules()`."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app import (
    AsyncTaskWorker,
    TaskContext,
    TaskDefinitionError,
    TaskRegistry,
    get_all_task_types,
    task,
)
from tests.faults import add_rejecting_trigger, drop_trigger, write_lock_held
from tests.waiting import until

from .conftest import sql

pytestmark = pytest.mark.timeout(90)
SECOND = timedelta(seconds=1)
Slots = list[datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class Ticks:
    """The slots each periodic test task ran for, by task type, in the order they ran."""

    def __init__(self) -> None:
        self.runs: dict[str, list[datetime]] = defaultdict(list)

    def task(self, name: str) -> Any:
        async def tick(scheduled_at: datetime) -> str:
            self.runs[name].append(scheduled_at)
            return scheduled_at.isoformat()

        return tick

    def slots(self, name: str) -> list[datetime]:
        return sorted(self.runs[name])


def periodic(ticks: Ticks, **schedules: dict[str, Any]) -> TaskRegistry:
    registry = TaskRegistry()
    for name, options in schedules.items():
        registry.register(name, ticks.task(name), **options)
    return registry


def assert_once_per_slot(slots: list[datetime]) -> None:
    """Whole seconds, each at most once."""
    assert len(slots) == len(set(slots)), slots
    assert all(s.microsecond == 0 and s.tzinfo is not None for s in slots), slots


def contiguous(slots: list[datetime]) -> bool:
    return all(b - a == SECOND for a, b in itertools.pairwise(slots))


async def serve_for(worker: AsyncTaskWorker, ticks: Ticks, name: str, runs: int) -> None:
    """Start the worker, wait for `runs` more runs of `name`, stop it."""
    await worker.start()
    try:
        wanted = len(ticks.runs[name]) + runs
        await until(lambda: len(ticks.runs[name]) >= wanted, 20, f"{runs} runs of {name}")
    finally:
        await worker.stop()


# -- defining ---------------------------------------------------------------------------


async def report() -> None:
    return None


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"cron": "0 * * * *", "every": 60}, "cron or every"),
        ({"timezone": "UTC"}, "cron or every"),
        ({"missed": "all"}, "cron or every"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * * * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"cron": 5}, "cron"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus_Mons"}, "time zone"),
        ({"every": 60, "timezone": "Europe/Paris"}, "timezone"),
        ({"every": 0}, "every"),
        ({"every": 1.5}, "every"),
        ({"every": timedelta(milliseconds=500)}, "every"),
        ({"every": True}, "every"),
        ({"every": 11 * 365 * 86400}, "every"),
        ({"every": 60, "missed": "most"}, "missed"),
    ],
)
def test_a_schedule_defined_wrongly_is_refused(options: dict[str, Any], complaint: str) -> None:
    registry = TaskRegistry()
    with pytest.raises(TaskDefinitionError, match=complaint):
        registry.register("report", report, **options)
    assert "report" not in registry


def test_the_decorator_refuses_a_bad_schedule_at_decoration_time() -> None:
    """@task checks the schedule as it decorates; nothing is registered."""
    with pytest.raises(TaskDefinitionError, match="invalid cron expression"):

        @task("periodic.bad_cron", cron="0 25 * * *")
        async def bad_cron() -> None:
            return None

    with pytest.raises(TaskDefinitionError, match="unknown time zone"):

        @task("periodic.bad_zone", cron="0 * * * *", timezone="Europe/Atlantis")
        async def bad_zone() -> None:
            return None

    assert not {"periodic.bad_cron", "periodic.bad_zone"} & set(get_all_task_types())


def test_a_periodic_function_must_be_callable_without_arguments() -> None:
    async def needs(customer: int) -> None:
        return None

    with pytest.raises(TaskDefinitionError, match="customer"):
        TaskRegistry().register("needs", needs, every=60)


def test_schedules_take_the_other_options_and_timedelta() -> None:
    registry = TaskRegistry()
    registry.register("poll", report, every=timedelta(minutes=5), priority=-3, max_attempts=2)
    definition = registry.get("poll")
    assert definition.options == {"priority": -3, "max_attempts": 2}
    assert definition.schedule is not None and definition.schedule.every == 300


# -- running ----------------------------------------------------------------------------


async def queued(worker: AsyncTaskWorker) -> dict[str, list[tuple[datetime, datetime]]]:
    """Every periodic task queued so far, by type: (its slot, when it was queued), by slot;
    one read, so every schedule is seen at the same moment."""
    found: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for info in await worker.get_all_tasks(limit=5000):
        found[info.task_type].append((info.kwargs["scheduled_at"], info.created_at))
    return {name: sorted(rows) for name, rows in found.items()}


def queued_between(rows: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> Slots:
    return [slot for slot, created in rows if start < created < end]


async def test_a_one_second_task_runs_once_per_slot_across_restarts(database_url: str) -> None:
    ticks = Ticks()
    options = {"priority": -2, "max_attempts": 3, "timeout": 30}
    registry = periodic(ticks, tick={"every": 1, "missed": "all", **options})
    worker = AsyncTaskWorker(database_url, registry=registry)
    await serve_for(worker, ticks, "tick", 3)
    await serve_for(worker, ticks, "tick", 2)  # a restart: nothing lost, nothing twice
    assert_once_per_slot(ticks.slots("tick"))
    async with worker:
        rows = (await queued(worker))["tick"]
        tasks = await worker.get_all_tasks(task_type="tick", limit=1000)
    slots = [slot for slot, _ in rows]
    assert_once_per_slot(slots)
    assert contiguous(slots), slots
    assert set(ticks.slots("tick")) <= set(slots)
    first = next(t for t in tasks if t.run_at == slots[0])
    assert (first.priority, first.max_attempts, first.timeout) == (-2, 3, 30)
    assert first.idempotency_key == f"periodic:tick:{slots[0]:%Y-%m-%dT%H:%M:%SZ}"
    assert first.metadata == {"schedule": "tick"}
    assert first.kwargs == {"scheduled_at": slots[0]}


async def test_a_periodic_task_may_take_the_task_context(database_url: str) -> None:
    """The context is the worker's to give, like `scheduled_at`: a periodic function that
    declares it is accepted and gets its own task's context each slot."""
    seen: list[tuple[str, int]] = []

    async def report(context: TaskContext) -> None:
        seen.append((context.task_id, context.attempt))

    registry = TaskRegistry()
    registry.register("report", report, every=1)
    async with AsyncTaskWorker(database_url, registry=registry) as worker:
        await until(lambda: len(seen) >= 2, timeout=30, what="two slots run")
        first = await worker.get_task_info(seen[0][0])
    assert first is not None and first.metadata == {"schedule": "report"}
    assert seen[0][1] == 1


async def test_the_slot_is_the_idempotency_key(database_url: str) -> None:
    """A process that saw the schedule's progress late (on PostgreSQL, another process's
    slots it did not see committed) decides slots already queued again: each key makes one
    task all the same."""
    ticks = Ticks()
    registry = periodic(ticks, tick={"every": 1, "missed": "all"})
    worker = AsyncTaskWorker(database_url, registry=registry)
    await serve_for(worker, ticks, "tick", 3)
    before = tick_keys(database_url)
    # As a stale reader would see it: progress 3 s back, while the three tasks exist.
    sql(database_url, "UPDATE schedules SET decided_until = decided_until - 3000000")
    await serve_for(worker, ticks, "tick", 1)
    keys = tick_keys(database_url)
    assert len(keys) == len(set(keys)), keys
    assert set(before) < set(keys)
    assert_once_per_slot(ticks.slots("tick"))


def tick_keys(database_url: str) -> list[object]:
    rows = sql(database_url, "SELECT idempotency_key FROM tasks WHERE task_type = 'tick'")
    return [key for (key,) in rows]


async def down_and_up(
    worker: AsyncTaskWorker, ticks: Ticks, names: list[str], downtime: float
) -> tuple[dict[str, Slots], dict[str, Slots]]:
    """Serve until two slots ran, stop, wait `downtime` s, start, serve until three more
    ran: the slots queued before the stop and after the start, by task type."""
    await serve_for(worker, ticks, names[0], 2)
    stopped = datetime.now(UTC)
    ran = {name: len(ticks.runs[name]) for name in names}
    await asyncio.sleep(downtime)  # down: nothing runs
    restarted = datetime.now(UTC)
    await worker.start()
    try:
        await until(lambda: all(len(ticks.runs[n]) >= ran[n] + 3 for n in names), 20)
        rows = await queued(worker)
    finally:
        await worker.stop()
    for name in names:
        assert_once_per_slot(ticks.slots(name))
        assert_once_per_slot([slot for slot, _ in rows[name]])
    first = {name: queued_between(rows[name], EPOCH, stopped) for name in names}
    second = {name: queued_between(rows[name], restarted, FUTURE) for name in names}
    for name in names:
        assert contiguous(first[name]) and contiguous(second[name]), (name, rows[name])
    return first, second


async def test_missed_slots_after_downtime_follow_each_policy(database_url: str) -> None:
    """Stopped for 3 s, then started: `all` queues every slot it missed, `one` only the
    latest, `skip` none; slots from the start on are queued for all three alike."""
    ticks = Ticks()
    policies = {"skipped": "skip", "latest": "one", "every_one": "all"}
    registry = periodic(ticks, **{name: {"every": 1, "missed": m} for name, m in policies.items()})
    worker = AsyncTaskWorker(database_url, registry=registry, max_workers=6)
    first, second = await down_and_up(worker, ticks, list(policies), 3.2)
    # `all`: nothing missing from its first slot to its last, downtime included.
    assert contiguous(first["every_one"] + second["every_one"])
    assert second["every_one"][0] - first["every_one"][-1] == SECOND
    # `skip`: a hole of the downtime at least.
    assert second["skipped"][0] - first["skipped"][-1] > 3 * SECOND
    # `one`: the slots `skip` queued, and one more just before them: the latest one missed.
    assert second["latest"] == [second["skipped"][0] - SECOND, *second["skipped"]], second
    assert second["latest"][0] - first["latest"][-1] > 2 * SECOND
    assert second["every_one"][-len(second["skipped"]) :] == second["skipped"]


async def test_missed_slots_are_capped(database_url: str) -> None:
    """missed="all" after 4 s down with the cap at 2: the two latest missed slots only."""
    ticks = Ticks()
    policies = {"capped": "all", "skipped": "skip"}
    registry = periodic(ticks, **{name: {"every": 1, "missed": m} for name, m in policies.items()})
    worker = AsyncTaskWorker(database_url, registry=registry, max_missed_slots=2)
    first, second = await down_and_up(worker, ticks, list(policies), 4.2)
    on_time = second["skipped"][0]
    assert second["capped"] == [on_time - 2 * SECOND, on_time - SECOND, *second["skipped"]]
    assert second["capped"][0] - first["capped"][-1] > 2 * SECOND


async def test_a_refused_insert_is_queued_at_the_next_wake(database_url: str) -> None:
    """Another program holds the write lock across slots: they are queued once it lets go,
    each exactly once, nothing lost."""
    ticks = Ticks()
    registry = periodic(ticks, tick={"every": 1, "missed": "skip"})
    worker = AsyncTaskWorker(
        database_url, registry=registry, busy_timeout=0.05, write_retry_seconds=0.3
    )
    async with worker:
        await until(lambda: len(ticks.runs["tick"]) >= 1, 20)
        with write_lock_held(database_url):
            held_from = datetime.now(UTC)
            await asyncio.sleep(2.6)
            held_until = datetime.now(UTC)
        await until(lambda: any(s > held_until for s in ticks.runs["tick"]), 20)
        slots = [slot for slot, _ in (await queued(worker))["tick"]]
    assert_once_per_slot(slots)
    assert contiguous(slots), slots
    assert len([s for s in slots if held_from < s < held_until]) >= 2, slots
    assert_once_per_slot(ticks.slots("tick"))


async def test_the_task_and_the_schedules_progress_commit_together(database_url: str) -> None:
    """While the schedule's row refuses every update, no slot's task is inserted either (one
    transaction); once it takes them again, the slots come, each once."""
    ticks = Ticks()
    registry = periodic(ticks, tick={"every": 1, "missed": "skip"})
    async with AsyncTaskWorker(database_url, registry=registry) as worker:
        await until(lambda: len(ticks.runs["tick"]) >= 1, 20)
        add_rejecting_trigger(database_url, "no_progress", "BEFORE UPDATE", "schedules", "no")
        count = len(tick_keys(database_url))
        await asyncio.sleep(2.5)
        assert len(tick_keys(database_url)) == count
        drop_trigger(database_url, "no_progress")
        await until(lambda: len(tick_keys(database_url)) >= count + 3, 20)
        assert worker.running
        slots = [slot for slot, _ in (await queued(worker))["tick"]]
    assert_once_per_slot(slots)
    assert contiguous(slots), slots


async def test_an_idle_schedule_makes_no_queries(database_url: str) -> None:
    """An hourly schedule: after the start, the scheduler sleeps; no transaction until then."""
    commits: list[int] = []
    ticks = Ticks()
    registry = periodic(ticks, hourly={"cron": "0 * * * *"})
    async with AsyncTaskWorker(
        database_url, registry=registry, commit_observer=lambda n, _s: commits.append(n)
    ) as worker:
        await until(lambda: commits, 10)
        await asyncio.sleep(0.3)
        settled = len(commits)
        await asyncio.sleep(1.5)
        assert len(commits) == settled
        [schedule] = await worker.schedules()
        assert schedule.next_run is not None and schedule.next_run.minute == 0


# -- reading ----------------------------------------------------------------------------


async def test_schedules_say_their_last_and_next_run(database_url: str) -> None:
    ticks = Ticks()
    registry = periodic(
        ticks,
        tick={"every": 1, "missed": "skip"},
        morning={"cron": "30 9 * * MON-FRI", "timezone": "America/New_York"},
        quarter={"cron": "*/15 * * * * *"},  # a sixth field, first: seconds
    )
    registry.register("plain", report)
    async with AsyncTaskWorker(database_url, registry=registry) as worker:
        await until(lambda: len(ticks.runs["tick"]) >= 2, 20)
        schedules = {s.name: s for s in await worker.schedules()}
        now = datetime.now(UTC)
    assert sorted(schedules) == ["morning", "quarter", "tick"]
    tick = schedules["tick"]
    assert (tick.every, tick.cron, tick.timezone, tick.missed) == (1.0, None, "UTC", "skip")
    assert tick.last_run is not None and tick.last_run in ticks.runs["tick"]
    assert tick.last_task_id is not None
    assert tick.next_run is not None and tick.last_run < tick.next_run <= now + 2 * SECOND

    morning = schedules["morning"]
    assert morning.cron == "30 9 * * MON-FRI"
    assert (morning.timezone, morning.missed) == ("America/New_York", "one")
    assert morning.last_run is None and morning.last_task_id is None
    assert morning.next_run is not None
    local = morning.next_run.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.weekday() < 5) == (9, 30, True)
    assert now < morning.next_run <= now + timedelta(days=4)

    quarter = schedules["quarter"].next_run
    assert quarter is not None and quarter.second % 15 == 0 and quarter > now - SECOND
