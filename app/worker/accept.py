"""PutTask: accepting new tasks, with ids, idempotency keys (and the fingerprint of the
request that used each) and webhook deliveries checked inside the writer's transaction, so
concurrent duplicates still make one row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from sqlalchemy import ColumnElement, Connection, or_, select

from app.db.bulk import Row, insert_rows, json_text
from app.db.tables import tasks, webhook_deliveries
from app.db.writer import WriteOp
from app.errors import IdempotencyKeyReusedError, TaskAlreadyExistsError, TaskError
from app.events.log import EventType
from app.worker.records import Accepted, NewTask, group_of, task_event
from app.worker.status import TaskStatus


class PutTask(WriteOp[Accepted]):
    def __init__(self, task: NewTask) -> None:
        super().__init__()
        self.task = task

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        taken = _Taken.load(conn, [op.task for op in ops])
        for op in ops:
            try:
                op.set_result(op._accept(taken))
            except TaskError as exc:
                op.set_error(exc)
        insert_rows(conn, tasks, TASK_COLUMNS, [_task_row(t) for t in taken.inserted])
        _record_deliveries(conn, taken.inserted)

    def _accept(self, taken: _Taken) -> Accepted:
        """The original task when this put repeats one; else this task, taken."""
        t = self.task
        previous = taken.previous(t)
        if previous is not None:
            return Accepted(previous, created=False)
        if t.id in taken.ids:
            raise TaskAlreadyExistsError(f"task {t.id!r} already exists", task_id=t.id)
        taken.add(t)
        self.events.append(
            task_event(
                EventType.QUEUED,
                t.id,
                t.task_type,
                group=group_of(t.metadata),
                status="pending",
                priority=t.priority,
            )
        )
        return Accepted(t.id, created=True, task=t)


@dataclass(slots=True)
class _Taken:
    """What a batch of puts collides with: ids, idempotency keys (with the fingerprint of
    the request that used each) and webhook deliveries already in the table, plus those
    taken by earlier puts of the same batch."""

    ids: set[str]
    keys: dict[str, tuple[str, str | None]]
    deliveries: dict[tuple[str, str], str]
    inserted: list[NewTask]

    @classmethod
    def load(cls, conn: Connection, new: Sequence[NewTask]) -> _Taken:
        ids, keys = _existing(conn, new)
        return cls(ids, keys, _existing_deliveries(conn, new), [])

    def previous(self, t: NewTask) -> str | None:
        """The id of the task this put repeats (same idempotency key or delivery), if any;
        IdempotencyKeyReusedError when the key was used for a different request (a key
        stored before fingerprints were kept matches any request)."""
        if t.idempotency_key is not None and t.idempotency_key in self.keys:
            task_id, fingerprint = self.keys[t.idempotency_key]
            if fingerprint is not None and fingerprint != t.fingerprint:
                raise IdempotencyKeyReusedError(
                    f"idempotency key {t.idempotency_key!r} was already used for a different "
                    "request; send the same request again, or use a new key"
                )
            return task_id
        if t.delivery is not None:
            return self.deliveries.get((t.delivery.endpoint, t.delivery.delivery_id))
        return None

    def add(self, t: NewTask) -> None:
        self.ids.add(t.id)
        self.inserted.append(t)
        if t.idempotency_key is not None:
            self.keys[t.idempotency_key] = (t.id, t.fingerprint)
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


def _existing(
    conn: Connection, new: Sequence[NewTask]
) -> tuple[set[str], dict[str, tuple[str, str | None]]]:
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
    columns = (tasks.c.id, tasks.c.idempotency_key, tasks.c.idempotency_fingerprint)
    found = conn.execute(select(*columns).where(condition)).all()
    return {row.id for row in found}, {
        row.idempotency_key: (row.id, row.idempotency_fingerprint)
        for row in found
        if row.idempotency_key
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
    "idempotency_fingerprint",
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
        t.fingerprint,
        t.cache_key,
        t.cache_ttl,
    )
