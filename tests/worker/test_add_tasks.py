"""`add_tasks`: many tasks in one call, checked all-or-nothing before anything is written,
one transaction, ids in order."""

from __future__ import annotations

from typing import Any

import pytest

from app import (
    AsyncTaskWorker,
    TaskAlreadyExistsError,
    TaskArgumentsError,
    TaskBatchError,
    TaskBatchTooLargeError,
    TaskOptions,
    TaskRegistry,
)
from app.bounds import MAX_BATCH_BYTES, MAX_BATCH_TASKS

from .conftest import sql


async def test_items_of_every_shape_run_with_ids_in_order(worker: AsyncTaskWorker) -> None:
    commits = worker.writer.commits
    ids = await worker.add_tasks("add", [(1, 2), {"a": 3, "b": 4}, ((5,), {"b": 6}), [7, 8]])
    assert worker.writer.commits - commits <= 2  # the batch, and maybe a claim with it
    assert len(set(ids)) == 4
    assert await worker.wait_for_tasks(ids, timeout=10) == [3, 7, 11, 15]


async def test_options_apply_to_every_task_and_keywords_to_the_function(
    database_url: str,
) -> None:
    async def fetch(url: str, timeout: float = 1.0) -> float:
        return timeout

    registry = TaskRegistry()
    registry.register("fetch", fetch)
    async with AsyncTaskWorker(database_url, registry=registry) as worker:
        options = TaskOptions(timeout=5, priority=4, metadata={"group": "g"})
        ids = await worker.add_tasks(fetch, [{"url": "a", "timeout": 30}, ("b",)], options=options)
        assert await worker.wait_for_tasks(ids, timeout=10) == [30, 1.0]
        for task_id in ids:
            info = await worker.get_task_info(task_id)
            assert info is not None
            assert (info.timeout, info.priority, info.metadata) == (5.0, 4, {"group": "g"})


@pytest.mark.parametrize(
    ("items", "bad"),
    [
        ([(1, 2), (1,), (3, 4), {"a": 1, "c": 2}], [1, 3]),  # signatures
        ([(1, 2), "12", (3, 4)], [1]),  # no known shape
        ([(1, 2), (object(), 1)], [1]),  # cannot be stored
        ([(1, 2), ("x" * 5_000_000, 1)], [1]),  # too large
    ],
)
async def test_one_bad_item_queues_nothing_and_each_bad_index_is_named(
    worker: AsyncTaskWorker, database_url: str, items: list[Any], bad: list[int]
) -> None:
    with pytest.raises(TaskBatchError) as caught:
        await worker.add_tasks("add", items)
    assert list(caught.value.problems) == bad
    for index in bad:
        assert f"[{index}]" in str(caught.value)
    assert sql(database_url, "select count(*) from tasks") == [(0,)]


async def test_a_collision_in_the_writer_queues_nothing(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    taken = await worker.add_task("add", 1, 1, task_id="taken")
    await worker.wait_for_tasks([taken], timeout=10)
    with pytest.raises(TaskAlreadyExistsError):
        await worker.submit_batch([_call("add", (1, 2)), _call("add", (3, 4), task_id="taken")])
    assert sql(database_url, "select count(*) from tasks") == [(1,)]


async def test_the_batch_size_is_bounded(worker: AsyncTaskWorker, database_url: str) -> None:
    with pytest.raises(TaskArgumentsError, match=str(MAX_BATCH_TASKS)):
        await worker.add_tasks("add", [(1, 2)] * (MAX_BATCH_TASKS + 1))
    assert sql(database_url, "select count(*) from tasks") == [(0,)]
    assert await worker.add_tasks("add", []) == []


async def test_an_idempotency_key_in_a_batch_finds_its_original(worker: AsyncTaskWorker) -> None:
    first = await worker.add_task("add", 1, 2, idempotency_key="k")
    again, new = await worker.submit_batch(
        [_call("add", (1, 2), idempotency_key="k"), _call("add", (2, 2))]
    )
    assert (again.task_id, again.created, new.created) == (first, False, True)


def _call(task_type: str, args: tuple[Any, ...], **options: Any) -> Any:
    from app.worker.batch import TaskCall

    return TaskCall(task_type, args, {}, TaskOptions(**options))


async def test_the_total_size_of_a_batch_is_bounded(
    worker: AsyncTaskWorker, database_url: str
) -> None:
    blob = "x" * (3 * 2**20)  # each task well within its own bounds
    later = TaskOptions(delay=3600)
    items = [(blob,)] * (MAX_BATCH_BYTES // len(blob) + 1)
    with pytest.raises(TaskBatchTooLargeError, match="split") as caught:
        await worker.add_tasks("record", items, options=later)
    assert caught.value.option == "tasks"
    assert sql(database_url, "select count(*) from tasks") == [(0,)]
    within = await worker.add_tasks("record", items[:-1], options=later)
    assert len(within) == len(items) - 1
