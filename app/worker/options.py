"""Job options, kept apart from a task's own arguments, and their validation."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from app import bounds
from app.cache.keys import KeyFunction, build_cache_key, key_context
from app.cache.serialization import packb
from app.clock import now_us, seconds_to_us
from app.errors import TaskArgumentsError, TaskSerializationError
from app.worker.idempotency import fingerprint
from app.worker.records import NewTask, WebhookDelivery

if TYPE_CHECKING:
    from app.worker.registry import TaskDefinition

T = TypeVar("T")
# Argument shapes remembered per task type (a bound on what odd callers can make it hold).
BIND_OUTCOMES_KEPT = 256


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How to run a task, as opposed to what to run it with. None means "the default"."""

    priority: int | None = None
    task_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    delay: float | None = None
    run_at: datetime | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    use_cache: bool | None = None
    cache_ttl: float | None = None
    cache_key_fn: KeyFunction | None = None
    webhook_delivery: WebhookDelivery | None = None


# The options a caller may name (add_task's keywords, configure()); a webhook's delivery is
# litetask's own.
CALL_OPTIONS = frozenset(f.name for f in fields(TaskOptions)) - {"webhook_delivery"}
BY_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def options_from(values: dict[str, Any]) -> TaskOptions:
    """TaskOptions from keywords; TaskArgumentsError for a name that is no option."""
    unknown = sorted(set(values) - CALL_OPTIONS)
    if unknown:
        raise TaskArgumentsError(
            f"unknown task options {unknown}; the options are {sorted(CALL_OPTIONS)}"
        )
    if values.get("metadata", {}) is None:
        values = {**values, "metadata": {}}
    return TaskOptions(**values)


def split_options(
    definition: TaskDefinition, kwargs: dict[str, Any]
) -> tuple[TaskOptions, dict[str, Any]]:
    """add_task's keywords without `options=`: the options apart from the function's own
    arguments. A keyword that names both an option and a parameter of the function raises
    TaskArgumentsError (it would silently go to one of them): `options=` settles it."""
    named = kwargs.keys() & CALL_OPTIONS
    if not named:
        return TaskOptions(), kwargs
    parameters = definition.signature.parameters
    clash = sorted(n for n in named if n in parameters and parameters[n].kind in BY_KEYWORD)
    if clash:
        raise TaskArgumentsError(
            f"{', '.join(map(repr, clash))}: both a parameter of task type "
            f"{definition.name!r} and a task option; pass the options apart: "
            f"add_task(..., options=TaskOptions(...), **kwargs) sends every other keyword "
            "to the function"
        )
    options = options_from({name: kwargs[name] for name in named})
    return options, {k: v for k, v in kwargs.items() if k not in named}


def build_new_task(
    definition: TaskDefinition,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    options: TaskOptions,
    *,
    default_max_attempts: int,
) -> NewTask:
    """Validate everything a task needs before it is accepted (app/bounds.py: nothing out of
    bounds reaches the writer); nothing is found at run time."""
    _check_signature(definition, args, kwargs)
    defaults = definition.options
    now = now_us()
    task_id = new_task_id() if options.task_id is None else bounds.task_id(options.task_id)
    packed_args = _pack("args", list(args))
    key = _optional(bounds.idempotency_key, options.idempotency_key)
    return NewTask(
        id=task_id,
        id_chosen=options.task_id is not None,
        task_type=bounds.task_type(definition.name),
        args=packed_args,
        kwargs=_pack("kwargs", kwargs),
        priority=bounds.priority(_first(options.priority, defaults.get("priority"), 0)),
        metadata=bounds.metadata(options.metadata),
        max_attempts=bounds.max_attempts(
            _first(options.max_attempts, defaults.get("max_attempts"), default_max_attempts)
        ),
        timeout=_optional(bounds.timeout, _first(options.timeout, defaults.get("timeout"))),
        run_at=_run_at(options, now),
        created_at=now,
        idempotency_key=key,
        fingerprint=key and fingerprint(definition.name, packed_args, kwargs, options),
        **_cache_fields(definition, list(args), kwargs, options, task_id),
        delivery=options.webhook_delivery,
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _optional(check: Callable[[Any], T], value: Any) -> T | None:
    return None if value is None else check(value)


def _check_signature(definition: TaskDefinition, args: Any, kwargs: dict[str, Any]) -> None:
    given = (definition.worker_given | {"progress_callback"}).intersection(kwargs) if kwargs else ()
    if given:
        raise TaskArgumentsError(
            f"{', '.join(sorted(given))} is given by the worker, not by the caller"
        )
    shape = (len(args), tuple(kwargs))
    outcomes = definition.bind_outcomes
    try:
        problem = outcomes[shape]
    except KeyError:
        problem = _bind_problem(definition, *shape)
        if len(outcomes) < BIND_OUTCOMES_KEPT:
            outcomes[shape] = problem
    if problem is not None:
        raise TaskArgumentsError(
            f"arguments do not fit task type {definition.name!r}{definition.signature}: {problem}"
        )


def _bind_problem(
    definition: TaskDefinition, positional: int, names: tuple[str, ...]
) -> str | None:
    """What Signature.bind says of arguments of this shape (it never looks at values)."""
    bindable: dict[str, Any] = dict.fromkeys(names)
    bindable.update(dict.fromkeys(definition.worker_given))
    try:
        definition.signature.bind(*[None] * positional, **bindable)
    except TypeError as exc:
        return str(exc)
    return None


def _pack(what: str, value: list[Any] | dict[str, Any]) -> bytes:
    bounds.arguments(what, value)
    try:
        return bounds.packed_size(what, packb(value))
    except TaskSerializationError as exc:
        raise TaskSerializationError(f"{what} cannot be stored: {exc}") from None


def _run_at(options: TaskOptions, now: int) -> int:
    if options.delay is not None and options.run_at is not None:
        raise TaskArgumentsError("give delay or run_at, not both")
    if options.delay is not None:
        return now + seconds_to_us(bounds.delay(options.delay))
    if options.run_at is not None:
        return bounds.run_at(options.run_at)
    return now


def _cache_fields(
    definition: TaskDefinition,
    args: list[Any],
    kwargs: dict[str, Any],
    options: TaskOptions,
    task_id: str,
) -> dict[str, Any]:
    """The cache key (computed now, so identical tasks find each other durably) and TTL,
    when this call uses the result cache."""
    defaults = definition.options
    use_cache = bounds.use_cache(_first(options.use_cache, defaults.get("use_cache"), False))
    ttl = _optional(bounds.cache_ttl, _first(options.cache_ttl, defaults.get("cache_ttl")))
    if not use_cache:
        return {}
    key_fn = _first(options.cache_key_fn, defaults.get("cache_key_fn"))
    context = key_context(
        definition.name, args, kwargs, metadata=options.metadata, entry_id=task_id
    )
    return {"cache_key": build_cache_key(context, key_fn), "cache_ttl": ttl}


def new_task_id() -> str:
    """A random UUID4 as a string: the same as str(uuid.uuid4()), at a third of the cost
    (it is on every submit's path)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
