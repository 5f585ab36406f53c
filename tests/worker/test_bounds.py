"""The Python API keeps the same bounds as HTTP: a bad option raises before anything is
written, a stored row always reads back, and an outcome that cannot be stored fails the task
instead of leaving it running."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app import (
    AsyncTaskWorker,
    IdempotencyKeyReusedError,
    InvalidOptionError,
    TaskExecutionError,
    TaskRegistry,
    TaskSerializationError,
    TaskStateError,
    TaskStatus,
)

from .conftest import sql

PLUS_14 = timezone(timedelta(hours=14))


def nested(depth: int, leaf: Any = 0, wrap: type = list) -> Any:
    value = leaf
    for _ in range(depth):
        value = wrap([value])
    return value


def cyclic() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


class Sneaky(dict[str, Any]):
    """A dict msgpack stores as a plain dict, but whose items() raises (event encoding)."""

    def items(self) -> Any:
        raise RuntimeError("items() is not for you")


class Unreadable(list[Any]):
    """A list that raises when anything reads its items."""

    def __iter__(self) -> Any:
        raise RuntimeError("not today")


async def echo(*args: Any, **kwargs: Any) -> Any:
    return [args, kwargs]


async def deep_result(depth: int) -> Any:
    return nested(depth)


async def deep_tuple_result(depth: int) -> Any:
    return nested(depth, wrap=tuple)


async def sneaky_result() -> Any:
    return Sneaky(a=1)


async def unreadable_result() -> Any:
    return Unreadable([1])


async def surrogate_error() -> None:
    raise ValueError("bad \ud800 text")


@pytest.fixture
async def bounded(database_url: str) -> AsyncIterator[AsyncTaskWorker]:
    registry = TaskRegistry()
    for func in (
        echo,
        deep_result,
        deep_tuple_result,
        sneaky_result,
        unreadable_result,
        surrogate_error,
    ):
        registry.register(func.__name__, func)
    async with AsyncTaskWorker(database_url, max_workers=4, registry=registry) as worker:
        yield worker


BAD_OPTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("priority beyond int64", {"priority": 2**63}, "priority"),
    ("priority beyond int32", {"priority": 2**31}, "priority"),
    ("priority not an int", {"priority": 1.5}, "priority"),
    ("max_attempts huge", {"max_attempts": 10**6}, "max_attempts"),
    ("timeout infinite", {"timeout": math.inf}, "timeout"),
    ("timeout nan", {"timeout": math.nan}, "timeout"),
    ("delay infinite", {"delay": math.inf}, "delay"),
    ("delay a century", {"delay": 100 * 365 * 86400.0}, "delay"),
    ("cache_ttl infinite", {"cache_ttl": math.inf}, "cache_ttl"),
    ("cache_ttl inf with cache", {"cache_ttl": math.inf, "use_cache": True}, "cache_ttl"),
    ("run_at year 1 +14:00", {"run_at": datetime(1, 1, 1, tzinfo=PLUS_14)}, "run_at"),
    ("run_at before 1970", {"run_at": datetime(1969, 12, 31, tzinfo=UTC)}, "run_at"),
    ("run_at year 9999", {"run_at": datetime(9999, 12, 31, tzinfo=UTC)}, "run_at"),
    ("run_at not a datetime", {"run_at": "2030-01-01"}, "run_at"),
    ("task_id too long", {"task_id": "x" * 65}, "task_id"),
    ("task_id lone surrogate", {"task_id": "\ud800"}, "task_id"),
    ("idempotency_key too long", {"idempotency_key": "k" * 256}, "idempotency_key"),
    ("idempotency_key surrogate", {"idempotency_key": "\udfff"}, "idempotency_key"),
    ("metadata too deep", {"metadata": {"a": nested(70)}}, "metadata"),
    ("metadata too big", {"metadata": {"a": "x" * 70_000}}, "metadata"),
    ("metadata not finite", {"metadata": {"a": math.nan}}, "metadata"),
    ("metadata cyclic", {"metadata": {"a": cyclic()}}, "metadata"),
    ("args too deep", {"args": (nested(600),)}, "args"),
    ("args too deep in tuples", {"args": (nested(600, wrap=tuple),)}, "args"),
    ("args cyclic", {"args": (cyclic(),)}, "args"),
    ("args too big", {"args": ("x" * (5 * 1024 * 1024),)}, "args"),
    ("kwargs too deep", {"kwargs": {"a": nested(65)}}, "kwargs"),
]


@pytest.mark.parametrize(("case", "call", "option"), BAD_OPTIONS, ids=[c[0] for c in BAD_OPTIONS])
async def test_a_bad_option_raises_before_anything_is_written(
    bounded: AsyncTaskWorker, database_url: str, case: str, call: dict[str, Any], option: str
) -> None:
    options = dict(call)
    args, kwargs = options.pop("args", ()), options.pop("kwargs", {})
    with pytest.raises(InvalidOptionError) as raised:
        await bounded.add_task("echo", *args, **options, **kwargs)
    assert raised.value.option == option
    assert option in str(raised.value)
    assert sql(database_url, "select count(*) from tasks") == [(0,)]


async def test_values_at_the_bounds_are_accepted(bounded: AsyncTaskWorker) -> None:
    task_id = await bounded.add_task(
        "echo",
        nested(64),
        priority=2**31 - 1,
        run_at=datetime(9999, 12, 29, tzinfo=UTC),
        metadata={"deep": nested(64)},
        task_id="x" * 64,
        idempotency_key="k" * 255,
        deep=nested(64),
    )
    info = await bounded.get_task_info(task_id)
    assert info is not None and info.render_errors == {}
    assert info.args == [nested(64)] and info.kwargs == {"deep": nested(64)}
    assert info.run_at == datetime(9999, 12, 29, tzinfo=UTC)
    assert await bounded.cancel_task(task_id)


async def test_one_bad_call_among_many_never_reaches_the_writer(
    bounded: AsyncTaskWorker, database_url: str
) -> None:
    writer = bounded.writer
    before = writer.commits
    calls = [
        bounded.add_task("echo", i, delay=3600, priority=2**63 if i == 137 else 0)
        for i in range(200)
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failed = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, BaseException)]
    assert failed == [137]
    assert isinstance(outcomes[137], InvalidOptionError)
    assert sql(database_url, "select count(*) from tasks") == [(199,)]
    assert writer.commits - before <= 5


async def test_same_idempotency_key_with_another_call_is_refused(
    bounded: AsyncTaskWorker, database_url: str
) -> None:
    first = await bounded.add_task("echo", 1, b=2, idempotency_key="k1")
    assert await bounded.add_task("echo", 1, b=2, idempotency_key="k1") == first
    for other in (
        bounded.add_task("echo", 2, b=2, idempotency_key="k1"),
        bounded.add_task("echo", 1, b=3, idempotency_key="k1"),
        bounded.add_task("echo", 1, b=2, priority=5, idempotency_key="k1"),
        bounded.add_task("deep_result", 1, idempotency_key="k1"),
    ):
        with pytest.raises(IdempotencyKeyReusedError):
            await other
    assert sql(database_url, "select count(*) from tasks") == [(1,)]


async def test_keyword_order_is_not_a_different_call(bounded: AsyncTaskWorker) -> None:
    first = await bounded.add_task("echo", a=1, b=2, idempotency_key="k2")
    assert await bounded.add_task("echo", b=2, a=1, idempotency_key="k2") == first


async def test_concurrent_calls_with_one_key_make_one_task_and_refuse_the_odd_one(
    bounded: AsyncTaskWorker, database_url: str
) -> None:
    calls = [bounded.add_task("echo", 1, idempotency_key="k3") for _ in range(20)]
    calls.append(bounded.add_task("echo", 2, idempotency_key="k3"))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert len({o for o in outcomes[:20]}) == 1
    assert isinstance(outcomes[20], IdempotencyKeyReusedError)
    assert sql(database_url, "select count(*) from tasks") == [(1,)]


async def wait_terminal(worker: AsyncTaskWorker, task_id: str) -> Any:
    async with asyncio.timeout(10):
        while True:
            info = await worker.get_task_info(task_id)
            assert info is not None
            if info.is_terminal:
                return info
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("task_type", "args"),
    [("deep_result", (600,)), ("deep_result", (450,)), ("deep_tuple_result", (600,))],
)
async def test_a_result_too_deep_to_store_fails_the_task(
    bounded: AsyncTaskWorker, task_type: str, args: tuple[Any, ...]
) -> None:
    task_id = await bounded.add_task(task_type, *args, max_attempts=3)
    info = await wait_terminal(bounded, task_id)
    assert info.status is TaskStatus.FAILED
    assert info.attempts == 1  # it would fail the same way again
    assert "nested deeper than 64" in (info.error or "")
    with pytest.raises(TaskExecutionError):
        await bounded.wait_for_tasks([task_id], timeout=5)


async def test_a_result_whose_event_cannot_be_encoded_still_completes(
    bounded: AsyncTaskWorker, database_url: str
) -> None:
    task_id = await bounded.add_task("sneaky_result")
    info = await wait_terminal(bounded, task_id)
    assert info.status is TaskStatus.COMPLETED and info.result == {"a": 1}
    types = sql(database_url, f"select type from events where task_id = '{task_id}'")
    assert ("task.completed",) in types


async def test_a_result_that_raises_when_read_fails_the_task(bounded: AsyncTaskWorker) -> None:
    task_id = await bounded.add_task("unreadable_result", max_attempts=3)
    info = await wait_terminal(bounded, task_id)
    assert info.status is TaskStatus.FAILED and info.attempts == 1
    assert info.error == "not today"


async def test_an_error_message_sqlite_cannot_store_still_fails_the_task(
    bounded: AsyncTaskWorker,
) -> None:
    task_id = await bounded.add_task("surrogate_error")
    info = await wait_terminal(bounded, task_id)
    assert info.status is TaskStatus.FAILED
    assert info.error == "bad \\ud800 text"


async def test_rows_written_by_another_program_still_read(
    bounded: AsyncTaskWorker, database_url: str
) -> None:
    """Garbage that litetask would never store, written straight into the file."""
    ids = [await bounded.add_task("echo", i, delay=3600) for i in range(6)]
    broken = {
        ids[0]: "args = x'c1'",
        ids[1]: "run_at = 1000000000000000000, created_at = -99999999999999999",
        ids[2]: "status = 'completed', result = x'" + "91" * 600 + "c0'",
        ids[3]: "status = 'completed', result = x'" + "91" * 100_000 + "c0'",
        ids[4]: "metadata = '{\"unterminated', kwargs = x'93010203'",
        ids[5]: "status = 'paused', priority = 'high', task_type = cast(x'ff' as text)",
    }
    for task_id, assignments in broken.items():
        sql(database_url, f"update tasks set {assignments} where id = '{task_id}'")
    listed = {info.id: info for info in await bounded.get_all_tasks()}
    assert set(listed) == set(ids)
    expected = {
        ids[0]: {"args"},
        ids[1]: {"run_at", "created_at"},
        ids[2]: {"result"},
        ids[3]: {"result"},
        ids[4]: {"metadata", "kwargs"},
        ids[5]: {"status", "priority"},
    }
    for task_id, fields in expected.items():
        info = await bounded.get_task_info(task_id)
        assert info is not None
        assert set(info.render_errors) == fields == set(listed[task_id].render_errors)
        assert all(info.render_errors.values())
    with pytest.raises(TaskSerializationError):
        await bounded.wait_for_tasks([ids[2]], timeout=5)
    assert await bounded.cancel_task(ids[1])  # the way out still works
    unknown = await bounded.get_task_info(ids[5])
    assert unknown is not None and unknown.task_type == "\ufffd"
    assert (unknown.status, unknown.priority) == (TaskStatus.FAILED, 0)  # the placeholders
    assert not await bounded.cancel_task(ids[5])  # a status it does not know: left alone
    with pytest.raises(TaskStateError, match="does not know"):
        await bounded.retry_task(ids[5])
