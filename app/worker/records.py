"""The shapes a task takes between the API, the writer and the pool, and the event rows
every state change writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.cache.jsonable import jsonable
from app.clock import now_us
from app.events.log import EventType, TaskEvent
from app.worker.status import AttemptKind, TaskStatus


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task as it is about to be inserted (arguments already msgpack-encoded)."""

    id: str
    task_type: str
    args: bytes
    kwargs: bytes
    priority: int
    metadata: dict[str, Any]
    max_attempts: int
    timeout: float | None
    run_at: int
    created_at: int
    idempotency_key: str | None = None
    delivery: WebhookDelivery | None = None
    cache_key: str | None = None
    cache_ttl: float | None = None
    # False when litetask generated the id (a UUID4): nothing to check it against.
    id_chosen: bool = True
    # With an idempotency key: what the request was (app/worker/idempotency.py).
    fingerprint: str | None = None

    @property
    def status(self) -> TaskStatus:
        """`scheduled` when it is for later (the stager makes it pending at its time)."""
        return TaskStatus.SCHEDULED if self.run_at > self.created_at else TaskStatus.PENDING


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A webhook delivery a task is accepted for; its rows commit with the task's row, and
    the same (endpoint, delivery_id) again yields the original task instead of a new one.
    With `body_sha256` (for senders whose signature covers no timestamp), the same body at
    the same endpoint within `replay_window` seconds does too, whatever its delivery id."""

    endpoint: str
    delivery_id: str
    body_sha256: str | None = None
    replay_window: float = 0.0


@dataclass(frozen=True, slots=True)
class Accepted:
    """The outcome of a put: the task's id, and False when an idempotency key (or webhook
    delivery) matched. `task` is the row as inserted when created, so a caller can show it
    without reading it back."""

    task_id: str
    created: bool
    task: NewTask | None = None


# (task id, attempt): an attempt's identity; a task's attempts only grow.
AttemptKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task a worker now owns for one attempt; `attempt` fences its completion."""

    id: str
    task_type: str
    args: bytes
    kwargs: bytes
    attempt: int
    max_attempts: int
    timeout: float | None
    priority: int
    run_at: int
    seq: int
    cache_key: str | None
    cache_ttl: float | None
    metadata: dict[str, Any]
    # Taken as a suspect (it was running when a process died): run alone among suspects.
    suspect: bool = False
    # Times it snoozed before this attempt (raised Retry): bounded by MAX_SNOOZES.
    snoozes: int = 0

    @property
    def group(self) -> str | None:
        return group_of(self.metadata)

    @property
    def key(self) -> AttemptKey:
        return (self.id, self.attempt)

    @property
    def spent(self) -> int:
        """Attempts this one included that count against max_attempts: every start but the
        snoozed ones (a snooze gives its attempt back and leaves max_attempts as it is)."""
        return self.attempt - self.snoozes

    def log_fields(self) -> dict[str, Any]:
        """`extra=` for a log line about this attempt (JSON logs show them as fields)."""
        return {"task_id": self.id, "attempt": self.attempt, "task_type": self.task_type}


@dataclass(frozen=True, slots=True)
class Completed:
    """A successful attempt: `result` is what is stored; `value` the same result as a Python
    value, kept in memory only (for the result cache)."""

    result: bytes
    from_cache: bool = False
    value: Any = None


@dataclass(frozen=True, slots=True)
class Failed:
    """An attempt that ended without a result; `retry_at` set means try again then, None
    means the task failed. `kind` says how it ended (a snooze gives its attempt back)."""

    error_type: str
    message: str
    traceback: str | None
    retry_at: int | None = None
    kind: AttemptKind = AttemptKind.FAILED


Outcome = Completed | Failed


def group_of(metadata: Mapping[str, Any] | None) -> str | None:
    """A task's group (its metadata's "group"), which event subscribers can filter on; none
    when the stored metadata is not an object (a row another program wrote)."""
    group = metadata.get("group") if isinstance(metadata, Mapping) else None
    return None if group is None else str(group)


EVENT_VALUE_LIMIT = 4096


def capped(name: str, value: Any, stored_size: int | None = None) -> dict[str, Any]:
    """`{name: value}` for an event payload when its JSON is at most EVENT_VALUE_LIMIT
    characters; `{name + "_truncated": True}` instead of a larger one (read the task).
    `stored_size` (the msgpack size) lets a result far over the limit skip the JSON encoding:
    msgpack is never 8 times larger than the JSON of the same value.

    It runs inside the writer's transaction, so it never raises: a value whose JSON cannot
    be made (an odd subclass, say) is left out the same way as a large one."""
    if stored_size is not None and stored_size > 8 * EVENT_VALUE_LIMIT:
        return {f"{name}_truncated": True}
    try:
        plain = jsonable(value)
        fits = len(json.dumps(plain, allow_nan=False)) <= EVENT_VALUE_LIMIT
    except Exception:  # whatever a user's subclass raises; the outcome must still commit
        fits = False
    return {name: plain} if fits else {f"{name}_truncated": True}


def task_event(
    kind: EventType, task_id: str, task_type: str, *, group: str | None = None, **payload: Any
) -> TaskEvent:
    """An event for the log; a task's group travels in every event's payload."""
    if group is not None:
        payload["group"] = group
    return TaskEvent(kind, task_id, task_type, now_us(), payload)
