"""TaskContext (a parameter named `context`, or annotated TaskContext) and the signals a task
raises: `Retry(delay=...)` runs it again without spending an attempt (up to MAX_SNOOZES
times), `Abort(reason)` fails it at once; both are kept in the attempt history."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app import (
    MAX_SNOOZES,
    Abort,
    AsyncTaskWorker,
    Retry,
    TaskArgumentsError,
    TaskContext,
    TaskDefinitionError,
    TaskExecutionError,
    TaskRegistry,
    TaskStatus,
)
from app.bounds import MAX_ATTEMPTS_LIMIT
from app.worker.status import AttemptKind


class Signals:
    """Task functions that look at their context and raise the signals."""

    def __init__(self) -> None:
        self.started: list[float] = []

    async def describe(self, label: str, context: TaskContext) -> dict[str, Any]:
        context.progress(0.25)
        return {
            "label": label,
            "task_id": context.task_id,
            "attempt": context.attempt,
            "max_attempts": context.max_attempts,
            "metadata": context.metadata,
            "cancelled": context.cancelled,
        }

    def annotated(self, ctx: TaskContext) -> str:
        """A plain def, its context under another name, found by the annotation."""
        ctx.progress(0.5)
        return ctx.task_id

    async def snooze_twice(self, delay: float, context: TaskContext) -> int:
        self.started.append(time.monotonic())
        if len(self.started) <= 2:
            raise Retry(delay=delay)
        return context.attempt

    async def snooze_then_fail(self, snoozes: int) -> None:
        self.started.append(time.monotonic())
        if len(self.started) <= snoozes:
            raise Retry(delay=0)
        raise RuntimeError(f"start {len(self.started)} failed")

    async def snooze_forever(self) -> None:
        raise Retry(delay=0)

    async def give_up(self) -> None:
        self.started.append(time.monotonic())
        raise Abort("the input can never work")


@pytest.fixture
def signals() -> Signals:
    return Signals()


@pytest.fixture
async def signal_worker(database_url: str, signals: Signals) -> AsyncIterator[AsyncTaskWorker]:
    registry = TaskRegistry()
    names = ("describe", "annotated", "snooze_twice", "snooze_then_fail", "snooze_forever")
    for name in (*names, "give_up"):
        registry.register(name, getattr(signals, name))
    async with AsyncTaskWorker(database_url, registry=registry, retry_backoff=0.01) as started:
        yield started


async def test_the_context_tells_the_task_about_its_attempt(
    signal_worker: AsyncTaskWorker,
) -> None:
    task_id = await signal_worker.add_task("describe", "x", max_attempts=4, metadata={"group": "g"})
    [result] = await signal_worker.wait_for_tasks([task_id], timeout=10)
    assert result == {
        "label": "x",
        "task_id": task_id,
        "attempt": 1,
        "max_attempts": 4,
        "metadata": {"group": "g"},
        "cancelled": False,
    }
    other = await signal_worker.add_task("annotated")
    assert await signal_worker.wait_for_tasks([other], timeout=10) == [other]


async def test_the_context_is_the_workers_to_give(signal_worker: AsyncTaskWorker) -> None:
    with pytest.raises(TaskArgumentsError, match="context"):
        await signal_worker.add_task("describe", "x", context={"fake": True})


def test_a_context_parameter_must_take_a_keyword() -> None:
    async def positional_only(context: TaskContext, /) -> None:
        return None

    with pytest.raises(TaskDefinitionError, match="context"):
        TaskRegistry().register("wrong", positional_only)


async def test_retry_runs_again_after_the_delay_without_spending_an_attempt(
    signal_worker: AsyncTaskWorker, signals: Signals
) -> None:
    task_id = await signal_worker.add_task("snooze_twice", 0.3, max_attempts=1)
    assert await signal_worker.wait_for_tasks([task_id], timeout=10) == [3]
    info = await signal_worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.COMPLETED
    assert info.snoozes == 2
    assert info.attempts - info.snoozes == 1  # what it spent of its one attempt
    assert [e.kind for e in info.errors] == [AttemptKind.SNOOZED] * 2
    assert [e.error_type for e in info.errors] == ["Retry", "Retry"]
    first, second, third = signals.started
    assert second - first >= 0.3 and third - second >= 0.3


async def test_a_snooze_leaves_max_attempts_as_given(signal_worker: AsyncTaskWorker) -> None:
    task_id = await signal_worker.add_task("snooze_twice", 0, max_attempts=MAX_ATTEMPTS_LIMIT)
    assert await signal_worker.wait_for_tasks([task_id], timeout=10) == [3]
    info = await signal_worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.COMPLETED
    assert (info.max_attempts, info.snoozes) == (MAX_ATTEMPTS_LIMIT, 2)


async def test_snoozes_spend_none_of_max_attempts(signal_worker: AsyncTaskWorker) -> None:
    task_id = await signal_worker.add_task("snooze_then_fail", 3, max_attempts=2)
    future = await signal_worker.get_task_future(task_id)
    with pytest.raises(TaskExecutionError, match="start 5 failed"):
        await future
    info = await signal_worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.FAILED
    assert (info.max_attempts, info.snoozes, info.attempts) == (2, 3, 5)
    kinds = [e.kind for e in info.errors]
    assert kinds == [AttemptKind.SNOOZED] * 3 + [AttemptKind.FAILED] * 2
    retried = await signal_worker.retry_task(task_id)  # one more attempt, not one per snooze
    assert retried.max_attempts == 3
    with pytest.raises(TaskExecutionError, match="start 6 failed"):
        await signal_worker.wait_for_tasks([task_id], timeout=10)
    info = await signal_worker.get_task_info(task_id)
    assert info is not None and (info.max_attempts, info.attempts) == (3, 6)


async def test_retry_is_bounded_by_the_most_snoozes(signal_worker: AsyncTaskWorker) -> None:
    task_id = await signal_worker.add_task("snooze_forever", max_attempts=1)
    future = await signal_worker.get_task_future(task_id)
    with pytest.raises(TaskExecutionError, match="snoozes"):
        await future
    info = await signal_worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.FAILED
    assert info.snoozes == MAX_SNOOZES
    assert [e.kind for e in info.errors].count(AttemptKind.SNOOZED) == MAX_SNOOZES
    assert info.errors[-1].kind is AttemptKind.FAILED


async def test_abort_fails_on_the_first_attempt_whatever_max_attempts(
    signal_worker: AsyncTaskWorker, signals: Signals
) -> None:
    task_id = await signal_worker.add_task("give_up", max_attempts=5)
    future = await signal_worker.get_task_future(task_id)
    with pytest.raises(TaskExecutionError, match="can never work"):
        await future
    info = await signal_worker.get_task_info(task_id)
    assert info is not None and info.status is TaskStatus.FAILED
    assert info.attempts == 1 and len(signals.started) == 1
    [attempt] = info.errors
    assert attempt.kind is AttemptKind.ABORTED
    assert (attempt.error_type, attempt.message) == ("Abort", "the input can never work")


def test_retry_refuses_a_delay_out_of_bounds() -> None:
    with pytest.raises(TaskArgumentsError):
        Retry(delay=-1)
