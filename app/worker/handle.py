"""TaskHandle: what `@task` returns. Called, it is the plain function; `defer` queues it.

As procrastinate's tasks do: `await handle(1, 2)` runs the function here and now,
`await handle.defer(1, 2)` queues a task and returns its id, and
`await handle.configure(priority=5, delay=60).defer(1, 2)` queues one with options. Every
keyword given to `defer` is an argument of the function; options only ever come through
`configure`, so they never collide.

Which worker queues it: the one given to `configure(worker=...)`, else the one running with
the task's registry in this process (AsyncTaskWorker.start attaches itself to its registry
and stop detaches it: no other state is kept for this).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from app.worker.options import TaskOptions, options_from

if TYPE_CHECKING:
    from app.worker.core import AsyncTaskWorker
    from app.worker.registry import TaskDefinition, TaskRegistry

P = ParamSpec("P")
R = TypeVar("R")


class TaskHandle(Generic[P, R]):
    """A registered task type, callable as its function."""

    def __init__(self, definition: TaskDefinition, registry: TaskRegistry) -> None:
        self.definition, self.registry = definition, registry
        functools.update_wrapper(self, definition.func)

    @property
    def name(self) -> str:
        """The task type's name."""
        return self.definition.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function directly (no task, no worker): a coroutine for an `async def`."""
        result: R = self.definition.func(*args, **kwargs)
        return result

    async def defer(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Queue a task with these arguments and the type's default options; its id."""
        return await ConfiguredTask(self, TaskOptions(), None).defer(*args, **kwargs)

    def configure(
        self, *, worker: AsyncTaskWorker | None = None, **options: Any
    ) -> ConfiguredTask[P]:
        """The same task type with options (TaskOptions' fields: priority, delay, run_at,
        timeout, max_attempts, metadata, task_id, idempotency_key, use_cache, cache_ttl,
        cache_key_fn) and, when given, the worker that queues it."""
        return ConfiguredTask(self, options_from(options), worker)

    def __repr__(self) -> str:
        return f"<TaskHandle {self.name!r} of {self.definition.func!r}>"


class ConfiguredTask(Generic[P]):
    """A task type with options chosen: `defer` queues it."""

    def __init__(
        self, handle: TaskHandle[P, Any], options: TaskOptions, worker: AsyncTaskWorker | None
    ) -> None:
        self.handle, self.options, self.worker = handle, options, worker

    async def defer(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Queue a task; returns its id once its row is committed."""
        worker = self.worker or self.handle.registry.running_worker()
        return await worker.add_task(self.handle.name, *args, options=self.options, **kwargs)
