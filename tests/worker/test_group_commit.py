"""Group commit on the single-call path (issue 13): a loop awaiting `add_task` one at a time
while the pool runs the tasks shares each commit between the task that finished, the next
claim and the next put, instead of a commit of its own for each."""

from __future__ import annotations

from app import AsyncTaskWorker

TASKS = 200


async def test_a_producer_loop_costs_about_one_commit_per_task(worker: AsyncTaskWorker) -> None:
    warm_up = [await worker.add_task("add", i, i) for i in range(5)]
    await worker.wait_for_tasks(warm_up, timeout=10)
    before = worker.writer.commits
    task_ids = [await worker.add_task("add", i, 1) for i in range(TASKS)]
    assert await worker.wait_for_tasks(task_ids, timeout=60) == [i + 1 for i in range(TASKS)]
    per_task = (worker.writer.commits - before) / TASKS
    # 1.5 when the completions committed on their own, between the producer's puts.
    assert per_task <= 1.2, per_task
