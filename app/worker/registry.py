"""Task types: which async functions may run, under which names and defaults.

A `TaskRegistry` instance is what a worker uses. The module-level default registry, filled by
the `@task` decorator, is the only module-level mutable state in litetask.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from app.errors import TaskDefinitionError, UnknownTaskTypeError
from app.worker.periodic import Schedule, schedule_from

P = ParamSpec("P")
R = TypeVar("R")
TaskFunction = Callable[..., Awaitable[Any]]

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
    # Whether arguments fit depends only on their shape (how many positional, which names
    # in which order), so the outcome of Signature.bind is kept per shape: see
    # app/worker/options.py. None means they fit, a string is bind's complaint.
    bind_outcomes: dict[tuple[int, tuple[str, ...]], str | None] = field(
        init=False, compare=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        signature = inspect.signature(self.func)
        object.__setattr__(self, "signature", signature)
        object.__setattr__(self, "accepts_progress", "progress_callback" in signature.parameters)

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""


class TaskRegistry:
    """Maps task type names to async functions; registering a name twice is an error."""

    def __init__(self) -> None:
        self._by_name: dict[str, TaskDefinition] = {}
        self._by_func: dict[TaskFunction, str] = {}

    def register(self, name: str, func: TaskFunction, **options: Any) -> TaskDefinition:
        """`options`: the defaults of every call, and for a periodic task type `cron` or
        `every`, with `timezone` and `missed` (app/worker/periodic.py)."""
        schedule = schedule_from(name, func, options)
        _check_definition(name, func, options)
        if name in self._by_name:
            raise TaskDefinitionError(f"task type {name!r} is already registered")
        definition = TaskDefinition(name, func, dict(options), schedule)
        self._by_name[name] = definition
        self._by_func[func] = name
        return definition

    def get(self, name: str) -> TaskDefinition:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownTaskTypeError(name, self.names()) from None

    def name_of(self, func: TaskFunction) -> str:
        """The task type a function is registered under."""
        try:
            return self._by_func[func]
        except KeyError:
            qualname = getattr(func, "__qualname__", repr(func))
            raise TaskDefinitionError(f"{qualname} is not a registered task type") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def definitions(self) -> list[TaskDefinition]:
        return [self._by_name[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)


def _check_definition(name: str, func: object, options: dict[str, Any]) -> None:
    if not isinstance(name, str) or not name.strip():
        raise TaskDefinitionError(f"a task type name must be a non-empty string, not {name!r}")
    if not inspect.iscoroutinefunction(func):
        raise TaskDefinitionError(f"task type {name!r} must be an async function (async def)")
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise TaskDefinitionError(
            f"task type {name!r} has unknown options {sorted(unknown)}; "
            f"allowed: {sorted(_OPTION_NAMES)}"
        )


default_registry = TaskRegistry()


def task(
    name: str, **options: Any
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Register the decorated async function as task type `name` in the default registry."""

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        default_registry.register(name, func, **options)
        return func

    return decorate


def register_task(name: str, func: TaskFunction, **options: Any) -> TaskDefinition:
    """Register `func` as task type `name` in the default registry."""
    return default_registry.register(name, func, **options)


def get_task_function(name: str) -> TaskFunction:
    """The function of a task type in the default registry."""
    return default_registry.get(name).func


def get_all_task_types() -> list[str]:
    """The names of every task type in the default registry, sorted."""
    return default_registry.names()
