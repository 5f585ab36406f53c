"""In-process futures for callers that want to await a task's outcome.

Waiters are only a convenience over the rows: they are resolved from committed terminal
events, and a task that is already finished resolves at once from its row.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from app.errors import (
    TaskCancellationError,
    TaskError,
    TaskExecutionError,
    TaskSerializationError,
    WorkerNotRunningError,
)
from app.worker.status import TaskInfo, TaskStatus


class TaskWaiters:
    def __init__(self) -> None:
        self._futures: defaultdict[str, list[asyncio.Future[Any]]] = defaultdict(list)

    def add(self, task_id: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[task_id].append(future)
        future.add_done_callback(lambda f: self._forget(task_id, f))
        return future

    def waiting_for(self, task_ids: Iterable[str]) -> dict[str, list[asyncio.Future[Any]]]:
        """The futures waiting now on each of `task_ids`. A terminal event settles only these:
        a future added later (say after a retry) must not get the outcome of the run before."""
        return {t: list(self._futures[t]) for t in task_ids if t in self._futures}

    def resolve(self, info: TaskInfo, futures: Iterable[asyncio.Future[Any]] | None = None) -> None:
        """Settle the futures of a finished task (all of them by default) from its row."""
        if not info.is_terminal:
            return
        for future in list(self._futures.get(info.id, ()) if futures is None else futures):
            if not future.done():
                settle(future, info)

    def fail_all(self, make_error: Callable[[], TaskError] | None = None) -> None:
        """Fail every waiting future with a new `make_error()` (default: the worker stopped)."""
        for futures in list(self._futures.values()):
            for future in list(futures):
                if not future.done():
                    future.set_exception(make_error() if make_error else _stopped())

    def _forget(self, task_id: str, future: asyncio.Future[Any]) -> None:
        futures = self._futures.get(task_id)
        if futures is not None and future in futures:
            futures.remove(future)
            if not futures:
                del self._futures[task_id]


def _stopped() -> TaskError:
    return WorkerNotRunningError("the worker stopped")


def settle(future: asyncio.Future[Any], info: TaskInfo) -> None:
    """Completed -> the result (TaskSerializationError when it cannot be read back);
    failed -> TaskExecutionError; cancelled -> TaskCancellationError."""
    if info.status is TaskStatus.COMPLETED and "result" in info.render_errors:
        problem = info.render_errors["result"]
        future.set_exception(
            TaskSerializationError(f"the stored result cannot be read: {problem}", task_id=info.id)
        )
    elif info.status is TaskStatus.COMPLETED:
        future.set_result(info.result)
    elif info.status is TaskStatus.CANCELLED:
        future.set_exception(
            TaskCancellationError(f"task {info.id} was cancelled", task_id=info.id)
        )
    else:
        last = info.errors[-1] if info.errors else None
        future.set_exception(
            TaskExecutionError(
                info.error or "task failed",
                task_id=info.id,
                error_type=last.error_type if last else None,
                traceback=last.traceback if last else None,
            )
        )
