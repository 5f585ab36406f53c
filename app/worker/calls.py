"""Calling a task's function for one attempt: its stored arguments, plus what the worker
gives (a progress callback, a TaskContext) to a function that declares them; awaited on the
event loop for an `async def`, in a worker thread for a plain `def` (app/worker/threads.py).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any

from app.cache.serialization import unpackb
from app.errors import WorkerNotRunningError
from app.worker.context import TaskContext
from app.worker.records import ClaimedTask
from app.worker.registry import PROGRESS_NAME, TaskDefinition
from app.worker.threads import ThreadRunner, hand_off

ProgressCallback = Callable[[float], None]


async def call_function(
    definition: TaskDefinition,
    claimed: ClaimedTask,
    progress: ProgressCallback | None,
    threads: ThreadRunner | None,
) -> Any:
    """The function's return value (whatever it raises propagates). Its context says
    `cancelled` once the call is over for the worker, however it ended."""
    args, kwargs = unpackb(claimed.args), unpackb(claimed.kwargs)
    if definition.is_async:
        context = _give(definition, claimed, kwargs, progress)
        try:
            return await definition.func(*args, **kwargs)
        finally:
            _end(context)
    if threads is None:
        raise WorkerNotRunningError("this worker runs no threads for plain def tasks")
    ended = threading.Event()
    loop = asyncio.get_running_loop()
    report = None if progress is None else hand_off(progress, loop, ended)
    context = _give(definition, claimed, kwargs, report)
    try:
        return await threads.call(claimed.id, functools.partial(definition.func, *args, **kwargs))
    finally:
        ended.set()
        _end(context)


def _give(
    definition: TaskDefinition,
    claimed: ClaimedTask,
    kwargs: dict[str, Any],
    progress: ProgressCallback | None,
) -> TaskContext | None:
    """Add the worker's own arguments to `kwargs`; the TaskContext, when one is given."""
    if progress is not None and definition.accepts_progress:
        kwargs[PROGRESS_NAME] = progress
    if definition.context_param is None:
        return None
    context = TaskContext(
        claimed.id, claimed.attempt, claimed.max_attempts, claimed.metadata, progress or _ignore
    )
    kwargs[definition.context_param] = context
    return context


def _end(context: TaskContext | None) -> None:
    if context is not None:
        context.end_attempt()


def _ignore(_progress: float) -> None:
    """Progress with nowhere to go (an executor used without a reporter)."""
