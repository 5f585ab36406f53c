"""TaskQueue: the durable queue. Every change is a WriteOp committed by the group-commit
writer together with its event rows; nothing about a task lives only in memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import ColumnElement, Connection, and_, bindparam, or_, select, update

from app.cache.jsonable import jsonable
from app.clock import now_us
from app.db.bulk import Row, insert_rows, json_text
from app.db.tables import status_is, task_attempts, tasks, webhook_deliveries
from app.db.writer import GroupCommitWriter, WriteOp
from app.events.log import EventType, TaskEvent
from app.worker.errors import TaskAlreadyExistsError, TaskNotFoundError, TaskStateError
from app.worker.status import RETRYABLE, TaskInfo, TaskStatus
from app.worker.store import read_task


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


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A webhook delivery a task is accepted for; its row commits with the task's row, and
    the same (endpoint, delivery_id) again yields the original task instead of a new one."""

    endpoint: str
    delivery_id: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """The outcome of a put: the task's id, and False when an idempotency key (or webhook
    delivery) matched. `task` is the row as inserted when created, so a caller can show it
    without reading it back."""

    task_id: str
    created: bool
    task: NewTask | None = None


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

    @property
    def group(self) -> str | None:
        return group_of(self.metadata)


@dataclass(frozen=True, slots=True)
class Completed:
    """A successful attempt: `result` is what is stored; `value` the same result as a Python
    value, kept in memory only (for the result cache)."""

    result: bytes
    from_cache: bool = False
    value: Any = None


@dataclass(frozen=True, slots=True)
class Failed:
    """A failed attempt; `retry_at` set means try again then, None means the task failed."""

    error_type: str
    message: str
    traceback: str | None
    retry_at: int | None = None


Outcome = Completed | Failed


def group_of(metadata: Mapping[str, Any] | None) -> str | None:
    """A task's group (its metadata's "group"), which event subscribers can filter on."""
    group = (metadata or {}).get("group")
    return None if group is None else str(group)


EVENT_VALUE_LIMIT = 4096


def capped(name: str, value: Any) -> dict[str, Any]:
    """`{name: value}` for an event payload when its JSON is at most EVENT_VALUE_LIMIT
    characters; `{name + "_truncated": True}` instead of a larger one (read the task)."""
    plain = jsonable(value)
    if len(json.dumps(plain)) <= EVENT_VALUE_LIMIT:
        return {name: plain}
    return {f"{name}_truncated": True}


def task_event(
    kind: EventType, task_id: str, task_type: str, *, group: str | None = None, **payload: Any
) -> TaskEvent:
    """An event for the log; a task's group travels in every event's payload."""
    if group is not None:
        payload["group"] = group
    return TaskEvent(kind, task_id, task_type, now_us(), payload)


class PutTask(WriteOp[Accepted]):
    def __init__(self, task: NewTask) -> None:
        super().__init__()
        self.task = task

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        taken = _Taken.load(conn, [op.task for op in ops])
        rows: list[Row] = []
        for op in ops:
            t = op.task
            previous = taken.previous(t)
            if previous is not None:
                op.set_result(Accepted(previous, created=False))
            elif t.id in taken.ids:
                op.set_error(TaskAlreadyExistsError(f"task {t.id!r} already exists", task_id=t.id))
            else:
                rows.append(_task_row(t))
                taken.add(t)
                op.set_result(Accepted(t.id, created=True, task=t))
                op.events.append(
                    task_event(
                        EventType.QUEUED,
                        t.id,
                        t.task_type,
                        group=group_of(t.metadata),
                        status="pending",
                        priority=t.priority,
                    )
                )
        insert_rows(conn, tasks, TASK_COLUMNS, rows)
        _record_deliveries(conn, taken.inserted)


@dataclass(slots=True)
class _Taken:
    """What a batch of puts collides with: ids, idempotency keys and webhook deliveries
    already in the table, plus those taken by earlier puts of the same batch."""

    ids: set[str]
    keys: dict[str, str]
    deliveries: dict[tuple[str, str], str]
    inserted: list[NewTask]

    @classmethod
    def load(cls, conn: Connection, new: Sequence[NewTask]) -> _Taken:
        ids, keys = _existing(conn, new)
        return cls(ids, keys, _existing_deliveries(conn, new), [])

    def previous(self, t: NewTask) -> str | None:
        """The id of the task this put repeats (same idempotency key or delivery), if any."""
        if t.idempotency_key is not None and t.idempotency_key in self.keys:
            return self.keys[t.idempotency_key]
        if t.delivery is not None:
            return self.deliveries.get((t.delivery.endpoint, t.delivery.delivery_id))
        return None

    def add(self, t: NewTask) -> None:
        self.ids.add(t.id)
        self.inserted.append(t)
        if t.idempotency_key is not None:
            self.keys[t.idempotency_key] = t.id
        if t.delivery is not None:
            self.deliveries[(t.delivery.endpoint, t.delivery.delivery_id)] = t.id


def _existing_deliveries(conn: Connection, new: Sequence[NewTask]) -> dict[tuple[str, str], str]:
    wanted = [t.delivery for t in new if t.delivery is not None]
    if not wanted:
        return {}
    d = webhook_deliveries.c
    statement = select(d.endpoint, d.delivery_id, d.task_id).where(
        d.delivery_id.in_([w.delivery_id for w in wanted])
    )
    rows = conn.execute(statement).all()
    return {(r.endpoint, r.delivery_id): r.task_id for r in rows}


def _record_deliveries(conn: Connection, inserted: Sequence[NewTask]) -> None:
    rows = [
        {
            "endpoint": t.delivery.endpoint,
            "delivery_id": t.delivery.delivery_id,
            "task_id": t.id,
            "received_at": t.created_at,
        }
        for t in inserted
        if t.delivery is not None
    ]
    if rows:
        conn.execute(webhook_deliveries.insert(), rows)


def _existing(conn: Connection, new: Sequence[NewTask]) -> tuple[set[str], dict[str, str]]:
    """Ids and idempotency keys among `new` that the table already holds. Generated ids
    are not looked up (a UUID4 does not collide), so a batch of plain submissions costs no
    query here; the unique index still guards them."""
    ids = [t.id for t in new if t.id_chosen]
    keys = [t.idempotency_key for t in new if t.idempotency_key is not None]
    if not ids and not keys:
        return set(), {}
    condition: ColumnElement[bool] = tasks.c.id.in_(ids)
    if keys:
        condition = or_(condition, tasks.c.idempotency_key.in_(keys))
    found = conn.execute(select(tasks.c.id, tasks.c.idempotency_key).where(condition)).all()
    return {row.id for row in found}, {
        row.idempotency_key: row.id for row in found if row.idempotency_key
    }


TASK_COLUMNS = (
    "id",
    "task_type",
    "status",
    "priority",
    "args",
    "kwargs",
    "metadata",
    "progress",
    "attempts",
    "max_attempts",
    "interruptions",
    "timeout",
    "created_at",
    "run_at",
    "from_cache",
    "idempotency_key",
    "cache_key",
    "cache_ttl",
)


def _task_row(t: NewTask) -> Row:
    """The new task's row for TASK_COLUMNS, in stored form: pending, no attempt yet."""
    return (
        t.id,
        t.task_type,
        TaskStatus.PENDING.value,
        t.priority,
        t.args,
        t.kwargs,
        json_text(t.metadata),
        0.0,
        0,
        t.max_attempts,
        0,
        t.timeout,
        t.created_at,
        t.run_at,
        False,
        t.idempotency_key,
        t.cache_key,
        t.cache_ttl,
    )


class ClaimTasks(WriteOp[list[ClaimedTask]]):
    """Take up to `limit` due pending tasks, best first, in one UPDATE ... RETURNING."""

    def __init__(self, limit: int, owner: str, lease_seconds: float) -> None:
        super().__init__()
        self.limit, self.owner, self.lease_seconds = limit, owner, lease_seconds

    def apply(self, conn: Connection) -> list[ClaimedTask]:
        now = now_us()
        due = (
            select(tasks.c.seq)
            .where(status_is(TaskStatus.PENDING), tasks.c.run_at <= now)
            .order_by(tasks.c.priority, tasks.c.run_at, tasks.c.seq)
            .limit(self.limit)
        )
        statement = (
            update(tasks)
            .where(tasks.c.seq.in_(due.scalar_subquery()))
            .values(
                status=TaskStatus.RUNNING.value,
                attempts=tasks.c.attempts + 1,
                started_at=now,
                owner=self.owner,
                lease_expires_at=now + int(self.lease_seconds * 1_000_000),
            )
            .returning(*(tasks.c[name] for name in _CLAIM_COLUMNS))
        )
        rows = conn.execute(statement).all()
        claimed = sorted(
            (ClaimedTask(*row) for row in rows), key=lambda c: (c.priority, c.run_at, c.seq)
        )
        for c in claimed:
            self.events.append(
                task_event(
                    EventType.STARTED,
                    c.id,
                    c.task_type,
                    group=c.group,
                    status="running",
                    attempt=c.attempt,
                )
            )
        return claimed


_CLAIM_COLUMNS = (
    "id",
    "task_type",
    "args",
    "kwargs",
    "attempts",
    "max_attempts",
    "timeout",
    "priority",
    "run_at",
    "seq",
    "cache_key",
    "cache_ttl",
    "metadata",
)


class FinishTask(WriteOp[bool]):
    """Record the outcome of one attempt. Fenced: applies only while the row is still
    `running` at that attempt, so a stale worker never overwrites a newer state."""

    def __init__(self, claimed: ClaimedTask, outcome: Outcome) -> None:
        super().__init__()
        self.task_id, self.task_type, self.attempt = claimed.id, claimed.task_type, claimed.attempt
        self.group = claimed.group
        self.outcome_ = outcome

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        completed = [op for op in ops if isinstance(op.outcome_, Completed)]
        if completed:
            applied = _complete_many(conn, completed)
            for op in completed:
                if op.task_id in applied:
                    op._record_completed()
                else:
                    op.set_result(False)
        for op in ops:
            if isinstance(op.outcome_, Failed):
                op.run_one(conn)

    def apply(self, conn: Connection) -> bool:
        outcome = self.outcome_
        assert isinstance(outcome, Failed)
        now = now_us()
        fence = and_(
            tasks.c.id == self.task_id,
            tasks.c.attempts == self.attempt,
            status_is(TaskStatus.RUNNING),
        )
        result = conn.execute(update(tasks).where(fence).values(**_failed_values(outcome, now)))
        if result.rowcount != 1:
            return False
        conn.execute(task_attempts.insert(), [self._attempt_row(outcome, now)])
        self._record_failed(outcome)
        return True

    def _attempt_row(self, outcome: Failed, now: int) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "attempt": self.attempt,
            "error_type": outcome.error_type,
            "message": outcome.message,
            "traceback": outcome.traceback,
            "failed_at": now,
        }

    def _record_completed(self) -> None:
        assert isinstance(self.outcome_, Completed)
        self.set_result(True)
        self.events.append(
            task_event(
                EventType.COMPLETED,
                self.task_id,
                self.task_type,
                group=self.group,
                status="completed",
                attempt=self.attempt,
                progress=1.0,
                from_cache=self.outcome_.from_cache,
                **capped("result", self.outcome_.value),
            )
        )

    def _record_failed(self, outcome: Failed) -> None:
        retrying = outcome.retry_at is not None
        kind = EventType.RETRYING if retrying else EventType.FAILED
        status = TaskStatus.PENDING if retrying else TaskStatus.FAILED
        self.events.append(
            task_event(
                kind,
                self.task_id,
                self.task_type,
                group=self.group,
                status=status.value,
                attempt=self.attempt,
                **capped("error", outcome.message),
                error_type=outcome.error_type,
                retry_at=outcome.retry_at,
            )
        )


def _failed_values(outcome: Failed, now: int) -> dict[str, Any]:
    common = {"owner": None, "lease_expires_at": None, "error": outcome.message}
    if outcome.retry_at is not None:
        return {**common, "status": TaskStatus.PENDING.value, "run_at": outcome.retry_at}
    return {**common, "status": TaskStatus.FAILED.value, "completed_at": now}


_COMPLETE = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("b_id"),
        tasks.c.attempts == bindparam("b_attempt"),
        status_is(TaskStatus.RUNNING),
    )
    .values(
        status=TaskStatus.COMPLETED.value,
        result=bindparam("b_result"),
        from_cache=bindparam("b_from_cache"),
        progress=1.0,
        completed_at=bindparam("b_now"),
        owner=None,
        lease_expires_at=None,
        error=None,
    )
)


def _complete_many(conn: Connection, ops: Sequence[FinishTask]) -> set[str]:
    """One executemany for every completion; returns the ids whose fence held. Only when
    some did not (a cancel raced the finish) does it read back which ones applied."""
    now = now_us()
    params = [
        {
            "b_id": op.task_id,
            "b_attempt": op.attempt,
            "b_result": op.outcome_.result,  # type: ignore[union-attr]
            "b_from_cache": op.outcome_.from_cache,  # type: ignore[union-attr]
            "b_now": now,
        }
        for op in ops
    ]
    result = conn.execute(_COMPLETE, params)
    if result.rowcount == len(params):
        return {op.task_id for op in ops}
    attempt_of = {op.task_id: op.attempt for op in ops}
    rows = conn.execute(
        select(tasks.c.id, tasks.c.attempts).where(
            tasks.c.id.in_(list(attempt_of)),
            status_is(TaskStatus.COMPLETED),
            tasks.c.completed_at == now,
        )
    )
    return {row.id for row in rows if attempt_of[row.id] == row.attempts}


class SaveProgress(WriteOp[None]):
    """Persist the latest progress of a running attempt (throttled by the caller)."""

    def __init__(self, task_id: str, attempt: int, progress: float) -> None:
        super().__init__()
        self.task_id, self.attempt, self.progress = task_id, attempt, progress

    def apply(self, conn: Connection) -> None:
        conn.execute(
            update(tasks)
            .where(
                tasks.c.id == self.task_id,
                tasks.c.attempts == self.attempt,
                status_is(TaskStatus.RUNNING),
            )
            .values(progress=self.progress)
        )


class CancelTask(WriteOp[TaskStatus]):
    """Cancel a pending or running task; the result is the status it had."""

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id

    def apply(self, conn: Connection) -> TaskStatus:
        row = _status_of(conn, self.task_id)
        previous = TaskStatus(row.status)
        if previous not in (TaskStatus.PENDING, TaskStatus.RUNNING):
            raise TaskStateError(
                f"task {self.task_id!r} is already {previous.value}",
                task_id=self.task_id,
                status=previous.value,
            )
        conn.execute(
            update(tasks)
            .where(tasks.c.id == self.task_id)
            .values(
                status=TaskStatus.CANCELLED.value,
                completed_at=now_us(),
                owner=None,
                lease_expires_at=None,
                error="cancelled",
            )
        )
        self.events.append(
            task_event(
                EventType.CANCELLED,
                self.task_id,
                row.task_type,
                group=group_of(row.metadata),
                status="cancelled",
            )
        )
        return previous


def _status_of(conn: Connection, task_id: str) -> Any:
    statement = select(tasks.c.status, tasks.c.task_type, tasks.c.metadata).where(
        tasks.c.id == task_id
    )
    row = conn.execute(statement).first()
    if row is None:
        raise TaskNotFoundError(f"no task with id {task_id!r}", task_id=task_id)
    return row


class RetryTask(WriteOp[TaskInfo]):
    """Queue a failed or cancelled task again, with a fresh set of attempts; the result is
    the task as it was queued (a worker may claim it the moment this commits)."""

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id

    def apply(self, conn: Connection) -> TaskInfo:
        row = _status_of(conn, self.task_id)
        if TaskStatus(row.status) not in RETRYABLE:
            raise TaskStateError(
                f"task {self.task_id!r} is {row.status}; "
                "only failed or cancelled tasks can be retried",
                task_id=self.task_id,
                status=row.status,
            )
        now = now_us()
        conn.execute(
            update(tasks)
            .where(tasks.c.id == self.task_id)
            .values(
                status=TaskStatus.PENDING.value,
                attempts=0,
                interruptions=0,
                progress=0.0,
                run_at=now,
                started_at=None,
                completed_at=None,
                error=None,
                result=None,
            )
        )
        self.events.append(
            task_event(
                EventType.QUEUED,
                self.task_id,
                row.task_type,
                group=group_of(row.metadata),
                status="pending",
                retried=True,
            )
        )
        queued = read_task(conn, self.task_id)
        assert queued is not None
        return queued


WAKE_ALWAYS = 2**63
WAKE_NEVER = -1


class TaskQueue:
    """The durable queue: puts, claims and outcomes through the group-commit writer, and an
    `asyncio.Event` that wakes the pool when new work is committed (no polling)."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer
        self.new_work = asyncio.Event()
        # The pool sets this before it sleeps: a new task due before it (µs) wakes the pool;
        # one due later will be found when the pool wakes anyway. WAKE_ALWAYS while idle.
        self.wake_before = WAKE_ALWAYS
        # The earliest run_at (µs) put since the pool last reset it to WAKE_ALWAYS: while it
        # claims (wake_before is WAKE_NEVER then), puts are noted here instead of waking it.
        self.earliest_put = WAKE_ALWAYS

    async def put(self, task: NewTask) -> Accepted:
        accepted = await self.writer.run(PutTask(task))
        if accepted.created:
            run_at = task.run_at
            if run_at < self.earliest_put:
                self.earliest_put = run_at
            if run_at < self.wake_before:
                self.new_work.set()
        return accepted

    async def claim(self, limit: int, owner: str, lease_seconds: float) -> list[ClaimedTask]:
        return await self.writer.run(ClaimTasks(limit, owner, lease_seconds))

    async def finish(self, claimed: ClaimedTask, outcome: Outcome) -> bool:
        finished = await self.writer.run(FinishTask(claimed, outcome))
        if isinstance(outcome, Failed) and outcome.retry_at is not None:
            self.new_work.set()
        return finished

    async def cancel(self, task_id: str) -> TaskStatus:
        return await self.writer.run(CancelTask(task_id))

    async def retry(self, task_id: str) -> TaskInfo:
        queued = await self.writer.run(RetryTask(task_id))
        self.new_work.set()
        return queued

    async def save_progress(self, task_id: str, attempt: int, progress: float) -> None:
        await self.writer.run(SaveProgress(task_id, attempt, progress))
