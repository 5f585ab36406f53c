"""Waiting on tasks from Python: futures and waits over the in-process waiters
(app/worker/waiters.py), a part of AsyncTaskWorker's public API kept in its own module."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from app.errors import TaskNotFoundError
from app.worker.status import TaskInfo
from app.worker.waiters import TaskWaiters


class TaskWaiting:
    """AsyncTaskWorker's waiting methods; the worker gives the waiters and the reads."""

    _waiters: TaskWaiters

    async def get_task_info(self, task_id: str) -> TaskInfo | None:
        raise NotImplementedError  # AsyncTaskWorker reads the row

    async def get_task_future(self, task_id: str) -> asyncio.Future[Any]:
        """A future that settles when the task finishes (see waiters.settle for how)."""
        future = self._waiters.add(task_id)
        info = await self.get_task_info(task_id)
        if info is None:
            future.cancel()
            raise TaskNotFoundError(f"no task with id {task_id!r}", task_id=task_id)
        self._waiters.resolve(info)
        return future

    async def get_task_futures(self, task_ids: Iterable[str]) -> list[asyncio.Future[Any]]:
        return [await self.get_task_future(task_id) for task_id in task_ids]

    async def wait_for_tasks(
        self, task_ids: Iterable[str], timeout: float | None = None
    ) -> list[Any]:
        """The results of all the tasks, in order; raises the first failure."""
        futures = await self.get_task_futures(task_ids)
        async with asyncio.timeout(timeout):
            return list(await asyncio.gather(*futures))

    async def wait_for_any_task(
        self, task_ids: Iterable[str], timeout: float | None = None
    ) -> tuple[str, Any]:
        """The id and result of whichever task finishes first."""
        ids = list(task_ids)
        futures = await self.get_task_futures(ids)
        by_future = dict(zip(futures, ids, strict=True))
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise TimeoutError(f"none of {len(ids)} tasks finished within {timeout} s")
        first = next(f for f in futures if f in done)
        return by_future[first], first.result()
