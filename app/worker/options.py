"""Job options, kept apart from a task's own arguments, and their validation."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.cache.keys import KeyFunction, build_cache_key, key_context
from app.cache.serialization import packb
from app.clock import datetime_to_us, now_us, seconds_to_us
from app.errors import TaskArgumentsError, TaskSerializationError
from app.worker.records import NewTask, WebhookDelivery
from app.worker.registry import TaskDefinition

MAX_TASK_ID_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 255
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


def build_new_task(
    definition: TaskDefinition,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    options: TaskOptions,
    *,
    default_max_attempts: int,
) -> NewTask:
    """Validate everything a task needs before it is accepted; nothing is found at run time."""
    _check_signature(definition, args, kwargs)
    defaults = definition.options
    now = now_us()
    task_id = _task_id(options.task_id)
    id_chosen = options.task_id is not None
    return NewTask(
        id=task_id,
        id_chosen=id_chosen,
        task_type=definition.name,
        args=_pack("args", list(args)),
        kwargs=_pack("kwargs", kwargs),
        priority=_int("priority", _first(options.priority, defaults.get("priority"), 0)),
        metadata=_metadata(options.metadata),
        max_attempts=_max_attempts(
            _first(options.max_attempts, defaults.get("max_attempts"), default_max_attempts)
        ),
        timeout=_timeout(_first(options.timeout, defaults.get("timeout"))),
        run_at=_run_at(options, now),
        created_at=now,
        idempotency_key=_idempotency_key(options.idempotency_key),
        **_cache_fields(definition, list(args), kwargs, options, task_id),
        delivery=options.webhook_delivery,
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _check_signature(definition: TaskDefinition, args: Any, kwargs: dict[str, Any]) -> None:
    if "progress_callback" in kwargs:
        raise TaskArgumentsError("progress_callback is given by the worker, not by the caller")
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
    if definition.accepts_progress:
        bindable["progress_callback"] = None
    try:
        definition.signature.bind(*[None] * positional, **bindable)
    except TypeError as exc:
        return str(exc)
    return None


def _pack(what: str, value: Any) -> bytes:
    try:
        return packb(value)
    except TaskSerializationError as exc:
        raise TaskSerializationError(f"{what} cannot be stored: {exc}") from None


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskArgumentsError(f"{name} must be an integer, not {value!r}")
    return value


def _task_id(value: str | None) -> str:
    if value is None:
        return new_task_id()
    if not isinstance(value, str) or not value or len(value) > MAX_TASK_ID_LENGTH:
        raise TaskArgumentsError(
            f"task_id must be a non-empty string of at most {MAX_TASK_ID_LENGTH} characters"
        )
    return value


def _idempotency_key(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 255):
        raise TaskArgumentsError(
            f"idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    return value


def _metadata(value: dict[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TaskArgumentsError("metadata must be a JSON object")
    if not value:
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TaskSerializationError(f"metadata must be JSON-serializable: {exc}") from None
    return value


def _max_attempts(value: Any) -> int:
    if _int("max_attempts", value) < 1:
        raise TaskArgumentsError("max_attempts must be at least 1")
    return int(value)


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise TaskArgumentsError(f"timeout must be a positive number of seconds, not {value!r}")
    return float(value)


def _run_at(options: TaskOptions, now: int) -> int:
    if options.delay is not None and options.run_at is not None:
        raise TaskArgumentsError("give delay or run_at, not both")
    if options.delay is not None:
        delay = options.delay
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise TaskArgumentsError(f"delay must be a non-negative number, not {delay!r}")
        return now + seconds_to_us(delay)
    if options.run_at is not None:
        if not isinstance(options.run_at, datetime):
            raise TaskArgumentsError("run_at must be a datetime")
        return datetime_to_us(options.run_at)
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
    use_cache = _first(options.use_cache, defaults.get("use_cache"), False)
    if not isinstance(use_cache, bool):
        raise TaskArgumentsError(f"use_cache must be true or false, not {use_cache!r}")
    ttl = _first(options.cache_ttl, defaults.get("cache_ttl"))
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise TaskArgumentsError(f"cache_ttl must be a positive number of seconds, not {ttl!r}")
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
