"""Task statuses, their named groups, and TaskInfo, the read-only view of one task."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    """[scheduled ->] pending -> claimed -> running -> completed | failed | cancelled.
    `scheduled`: waiting for its run_at (submitted for later, or a retry's backoff), kept
    apart so claims read due rows only; it becomes `pending` at its time. `claimed`: taken
    by a process ahead of a free slot, not started. Both are shown as queued. `running`: its
    function has started (`started_at` and `attempts` are set then)."""

    SCHEDULED = "scheduled"
    PENDING = "pending"
    CLAIMED = "claimed"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE: frozenset[TaskStatus] = frozenset(
    {TaskStatus.SCHEDULED, TaskStatus.PENDING, TaskStatus.CLAIMED, TaskStatus.RUNNING}
)
TERMINAL: frozenset[TaskStatus] = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)
RETRYABLE: frozenset[TaskStatus] = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


class AttemptKind(StrEnum):
    """How an attempt in the history ended: it failed (raised, or timed out), it asked to run
    again later (`raise Retry(...)`), or it gave its task up (`raise Abort(...)`)."""

    FAILED = "failed"
    SNOOZED = "snoozed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class AttemptError:
    """How one attempt of a task ended without a result; every such attempt keeps one."""

    attempt: int
    error_type: str
    message: str
    traceback: str | None
    failed_at: datetime
    kind: AttemptKind = AttemptKind.FAILED


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A snapshot of one task as stored; the database row is the truth."""

    id: str
    task_type: str
    status: TaskStatus
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    metadata: dict[str, Any]
    progress: float
    attempts: int
    max_attempts: int
    interruptions: int
    created_at: datetime
    run_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    timeout: float | None
    result: Any = None
    error: str | None = None
    from_cache: bool = False
    idempotency_key: str | None = None
    # How each attempt that ended without a result ended (failed, snoozed, aborted).
    errors: list[AttemptError] = field(default_factory=list)
    # Stored values that could not be read back (field name -> why); such a field holds a
    # placeholder: [] / {} / None, or the epoch for a time. See app/worker/rendering.py.
    render_errors: dict[str, str] = field(default_factory=dict)
    # Attempts that raised Retry: they ran again without spending an attempt. `attempts`
    # counts every start, snoozed ones too; attempts - snoozes is what the task has spent
    # of its max_attempts (which a snooze leaves as it was).
    snoozes: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL
