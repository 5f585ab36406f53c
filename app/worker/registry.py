"""Task types: which functions may run, under which names and defaults.

A `TaskRegistry` instance is what a worker uses. The module-level default registry, filled by
the `@task` decorator, is the only module-level mutable state in litetask; it also knows the
workers running with it in this process, which is how `handle.defer()` finds one.

A task type's function is an `async def` (run on the event loop) or a plain `def` (run in the
worker's thread pool, app/worker/threads.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from app.errors import (
    AmbiguousWorkerError,
    TaskDefinitionError,
    UnknownTaskTypeError,
    WorkerNotRunningError,
)
from app.worker.context import context_parameter
from app.worker.handle import TaskHandle
from app.worker.periodic import Schedule, schedule_from

if TYPE_CHECKING:
    from app.worker.core import AsyncTaskWorker

P = ParamSpec("P")
R = TypeVar("R")
TaskFunction = Callable[..., Any]
PROGRESS_NAME = "progress_callback"

_OPTION_NAMES = frozenset(
    {"priority", "max_attempts", "timeout", "use_cache", "cache_ttl", "cache_key_fn"}
)


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """One registered task type: its function and the options every call starts from."""

    name: str
    func: TaskFunction
    options: dict[str, Any] = field(default_factory=dict)
    # When it runs by itself (`cron=` or `every=`: app/worker/periodic.py); None: on demand.
    schedule: Schedule | None = None
    signature: inspect.Signature = field(init=False, compare=False)
    accepts_progress: bool = field(init=False, compare=False)
    # False for a plain `def`, which runs in a worker thread.
    is_async: bool = field(init=False, compare=False)
    # The parameter that receives the TaskContext, if any (app/worker/context.py).
    context_param: str | None = field(init=False, compare=False)
    # The parameters the worker fills (progress callback, context), never the caller.
    worker_given: frozenset[str] = field(init=False, compare=False)
    # Whether arguments fit depends only on their shape (how many positional, which names
    # in which order), so the outcome of Signature.bind is kept per shape: see
    # app/worker/options.py. None means they fit, a string is bind's complaint.
    bind_outcomes: dict[tuple[int, tuple[str, ...]], str | None] = field(
        init=False, compare=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        signature = inspect.signature(self.func)
        object.__setattr__(self, "signature", signature)
        object.__setattr__(self, "accepts_progress", PROGRESS_NAME in signature.parameters)
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.func))
        context = context_parameter(self.func, signature)
        object.__setattr__(self, "context_param", context)
        given = (PROGRESS_NAME if self.accepts_progress else None, context)
        object.__setattr__(self, "worker_given", frozenset(n for n in given if n is not None))

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""


class TaskRegistry:
    """Maps task type names to functions; registering a name twice is an error."""

    def __init__(self) -> None:
        self._by_name: dict[str, TaskDefinition] = {}
        self._by_func: dict[TaskFunction, str] = {}
        self._workers: list[AsyncTaskWorker] = []  # started here, in start order

    def register(self, name: str, func: TaskFunction, **options: Any) -> TaskDefinition:
        """`options`: the defaults of every call, and for a periodic task type `cron` or
        `every`, with `timezone` and `missed` (app/worker/periodic.py)."""
        schedule = schedule_from(name, func, options)
        _check_definition(name, func, options)
        if name in self._by_name:
            raise TaskDefinitionError(f"task type {name!r} is already registered")
        definition = TaskDefinition(name, func, dict(options), schedule)
        _check_context(definition)
        self._by_name[name] = definition
        self._by_func[func] = name
        return definition

    def get(self, name: str) -> TaskDefinition:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownTaskTypeError(name, self.names()) from None

    def task(self, name: str, **options: Any) -> Callable[[Callable[P, R]], TaskHandle[P, R]]:
        """Register the decorated function as task type `name` here. Returns a TaskHandle:
        called, it runs the function as before; `.defer(...)` queues a task."""

        def decorate(func: Callable[P, R]) -> TaskHandle[P, R]:
            return TaskHandle(self.register(name, func, **options), self)

        return decorate

    def name_of(self, func: TaskFunction) -> str:
        """The task type a function (or the handle `@task` made of it) is registered under."""
        if isinstance(func, TaskHandle):
            return func.name
        try:
            return self._by_func[func]
        except KeyError:
            qualname = getattr(func, "__qualname__", repr(func))
            raise TaskDefinitionError(f"{qualname} is not a registered task type") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def definitions(self) -> list[TaskDefinition]:
        return [self._by_name[name] for name in self.names()]

    def attach(self, worker: AsyncTaskWorker) -> None:
        """A worker using this registry started in this process (AsyncTaskWorker.start)."""
        if worker not in self._workers:
            self._workers.append(worker)

    def detach(self, worker: AsyncTaskWorker) -> None:
        """The worker is stopping: `running_worker` no longer offers it."""
        if worker in self._workers:
            self._workers.remove(worker)

    def running_worker(self) -> AsyncTaskWorker:
        """The one worker running with this registry in this process, for `defer()` called
        without one; WorkerNotRunningError when none is, AmbiguousWorkerError when several
        are (pass one: `configure(worker=...)`)."""
        if len(self._workers) == 1:
            return self._workers[0]
        if not self._workers:
            raise WorkerNotRunningError(
                "no AsyncTaskWorker with this task's registry is running in this process; "
                "start one, or pass one: configure(worker=...).defer(...)"
            )
        raise AmbiguousWorkerError(
            f"{len(self._workers)} workers with this task's registry are running in this "
            "process; say which: configure(worker=...).defer(...)"
        )

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)


def _check_definition(name: str, func: object, options: dict[str, Any]) -> None:
    if not isinstance(name, str) or not name.strip():
        raise TaskDefinitionError(f"a task type name must be a non-empty string, not {name!r}")
    if isinstance(func, TaskHandle):
        raise TaskDefinitionError(f"task type {name!r}: {func.name!r} is registered already")
    if not callable(func) or inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TaskDefinitionError(
            f"task type {name!r} must be a function (async def, or def to run in a thread), "
            "not a generator"
        )
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise TaskDefinitionError(
            f"task type {name!r} has unknown options {sorted(unknown)}; "
            f"allowed: {sorted(_OPTION_NAMES)}"
        )


def _check_context(definition: TaskDefinition) -> None:
    """The worker passes the context by keyword: its parameter must take one."""
    name = definition.context_param
    if name is None:
        return
    kind = definition.signature.parameters[name].kind
    if kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
        raise TaskDefinitionError(
            f"task type {definition.name!r}: the context parameter {name!r} must be one that "
            "can be passed by keyword"
        )


default_registry = TaskRegistry()


def task(name: str, **options: Any) -> Callable[[Callable[P, R]], TaskHandle[P, R]]:
    """Register the decorated function as task type `name` in the default registry (see
    TaskRegistry.task): `await fn(...)` runs it, `await fn.defer(...)` queues it."""
    return default_registry.task(name, **options)


def register_task(name: str, func: TaskFunction, **options: Any) -> TaskDefinition:
    """Register `func` as task type `name` in the default registry."""
    return default_registry.register(name, func, **options)


def get_task_function(name: str) -> TaskFunction:
    """The function of a task type in the default registry."""
    return default_registry.get(name).func


def get_all_task_types() -> list[str]:
    """The names of every task type in the default registry, sorted."""
    return default_registry.names()
