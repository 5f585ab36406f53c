"""PutTask: accepting new tasks, with ids, idempotency keys (and the fingerprint of the
request that used each) and webhook deliveries checked inside the writer's transaction, so
concurrent duplicates still make one row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import ColumnElement, Connection, bindparam, delete, or_, select

from app.clock import seconds_to_us
from app.db.bulk import Row, insert_rows, json_text
from app.db.postgres.inserts import insert_unless_taken
from app.db.tables import tasks, webhook_deliveries
from app.db.writer import WriteOp
from app.errors import IdempotencyKeyReusedError, TaskAlreadyExistsError, TaskError
from app.events.log import EventType, TaskEvent
from app.worker.records import Accepted, NewTask, group_of, task_event
from app.worker.status import TaskStatus


class PutTask(WriteOp[Accepted]):
    def __init__(self, task: NewTask) -> None:
        super().__init__()
        self.task = task

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        def decide(taken: _Taken) -> None:
            for op in ops:
                op.events = []
                try:
                    op.set_result(op._accept(taken))
                except TaskError as exc:
                    op.set_error(exc)

        _accept_and_insert(conn, [op.task for op in ops], decide)

    def _accept(self, taken: _Taken) -> Accepted:
        return _accept(self.task, taken, self.events)


class PutTasks(WriteOp[list[Accepted]]):
    """Many tasks in one transaction, all or none: when one collides (its id is taken, its
    idempotency key was used for another request), none is written and that error is the
    outcome. A task repeating an earlier request (same idempotency key) is its original."""

    def __init__(self, new: Sequence[NewTask]) -> None:
        super().__init__()
        self.tasks = list(new)

    def apply(self, conn: Connection) -> list[Accepted]:
        events: list[TaskEvent] = []
        accepted: list[Accepted] = []

        def decide(taken: _Taken) -> None:
            events.clear()
            accepted[:] = [_accept(t, taken, events) for t in self.tasks]  # raises: no rows

        _accept_and_insert(conn, self.tasks, decide)
        self.events.extend(events)
        return accepted


def _accept_and_insert(
    conn: Connection, new: Sequence[NewTask], decide: Callable[[_Taken], None]
) -> None:
    """Load what `new` collides with, `decide` each put against it, insert the tasks taken.
    On PostgreSQL another process may take a key, id or webhook delivery of theirs
    meanwhile: then nothing of them stays inserted and all is decided again, against the
    winner's row (each round sees at least one more: a bound far past that is a bug, not a
    race)."""
    for _ in range(len(new) + RACE_ROUNDS):
        taken = _Taken.load(conn, new)
        decide(taken)
        if _insert_tasks(conn, taken.inserted):
            return
    raise RuntimeError("tasks kept colliding with rows their transaction cannot see")


def _insert_tasks(conn: Connection, new: Sequence[NewTask]) -> bool:
    """Insert the rows of `new` and of their webhook deliveries; False, with none of them
    inserted, when another transaction took a key, id or delivery of theirs. SQLite has one
    writer: nothing races it there, and plain tasks (a generated id, no key, no delivery)
    race nothing anywhere."""
    if conn.dialect.name != "postgresql" or not any(_may_race(t) for t in new):
        insert_rows(conn, tasks, TASK_COLUMNS, [_task_row(t) for t in new])
        return _record_deliveries(conn, new, racing=False)
    inserted = insert_unless_taken(conn, tasks, [_task_values(t) for t in new], tasks.c.id)
    if len(inserted) == len(new) and _record_deliveries(conn, new, racing=True):
        return True
    conn.execute(delete(tasks).where(tasks.c.id.in_(inserted)))
    ours = webhook_deliveries.c.task_id.in_([t.id for t in new if t.delivery is not None])
    conn.execute(delete(webhook_deliveries).where(ours))
    return False


def _may_race(t: NewTask) -> bool:
    """Whether another process may insert a unique value of `t`'s rows at the same moment."""
    return t.idempotency_key is not None or t.id_chosen or t.delivery is not None


def _accept(t: NewTask, taken: _Taken, events: list[TaskEvent]) -> Accepted:
    """The original task when `t` repeats one; else `t`, taken (its event added)."""
    previous = taken.previous(t)
    if previous is not None:
        return Accepted(previous, created=False)
    if t.id in taken.ids:
        raise TaskAlreadyExistsError(f"task {t.id!r} already exists", task_id=t.id)
    taken.add(t)
    later = {"run_at": t.run_at} if t.status is TaskStatus.SCHEDULED else {}
    events.append(
        task_event(
            EventType.QUEUED,
            t.id,
            t.task_type,
            group=group_of(t.metadata),
            status=t.status.value,
            priority=t.priority,
            **later,
        )
    )
    return Accepted(t.id, created=True, task=t)


# (endpoint, key) of a delivery row -> (task id, received_at)
Deliveries = dict[tuple[str, str], tuple[str, int]]
BODY_KEY_PREFIX = "sha256:"
RACE_ROUNDS = 8  # rounds of deciding again past one per task (see _accept_and_insert)
FOREVER = -(2**63)


@dataclass(slots=True)
class _Taken:
    """What a batch of puts collides with: ids, idempotency keys (with the fingerprint of
    the request that used each) and webhook deliveries already in the table, plus those
    taken by earlier puts of the same batch."""

    ids: set[str]
    keys: dict[str, tuple[str, str | None]]
    deliveries: Deliveries
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
            for key, since in delivery_keys(t).items():
                found = self.deliveries.get((t.delivery.endpoint, key))
                if found is not None and found[1] >= since:
                    return found[0]
        return None

    def add(self, t: NewTask) -> None:
        self.ids.add(t.id)
        self.inserted.append(t)
        if t.idempotency_key is not None:
            self.keys[t.idempotency_key] = (t.id, t.fingerprint)
        if t.delivery is not None:
            for key in delivery_keys(t):
                self.deliveries[(t.delivery.endpoint, key)] = (t.id, t.created_at)


def delivery_keys(t: NewTask) -> dict[str, int]:
    """The webhook_deliveries keys a task's delivery takes, each with the oldest
    received_at that still counts as a repeat: a delivery id forever, a body digest within
    the replay window (an older row of the same body is replaced)."""
    assert t.delivery is not None
    d = t.delivery
    keys = {d.delivery_id: FOREVER}  # first: a known delivery id names its own task
    if d.body_sha256 is not None:
        since = t.created_at - seconds_to_us(d.replay_window)
        keys.setdefault(BODY_KEY_PREFIX + d.body_sha256, since)
    return keys


def _existing_deliveries(conn: Connection, new: Sequence[NewTask]) -> Deliveries:
    """Rows of the deliveries in `new`: both columns of the primary key are constrained, so
    SQLite searches the key's index instead of scanning the table."""
    endpoints = {t.delivery.endpoint for t in new if t.delivery is not None}
    wanted = [key for t in new if t.delivery is not None for key in delivery_keys(t)]
    if not wanted:
        return {}
    d = webhook_deliveries.c
    statement = select(d.endpoint, d.delivery_id, d.task_id, d.received_at).where(
        d.endpoint.in_(endpoints), d.delivery_id.in_(wanted)
    )
    rows = conn.execute(statement).all()
    return {(r.endpoint, r.delivery_id): (r.task_id, r.received_at) for r in rows}


def _delivery_rows(inserted: Sequence[NewTask]) -> list[dict[str, str | int]]:
    """The webhook_deliveries rows of the tasks `inserted` (column -> value)."""
    return [
        {
            "endpoint": t.delivery.endpoint,
            "delivery_id": key,
            "task_id": t.id,
            "received_at": t.created_at,
        }
        for t in inserted
        if t.delivery is not None
        for key in delivery_keys(t)
    ]


def _record_deliveries(conn: Connection, inserted: Sequence[NewTask], *, racing: bool) -> bool:
    """Insert the delivery rows of the tasks `inserted`, once the rows of the same body
    from before the replay window are gone. `racing` (PostgreSQL, where another process may
    take one at the same moment): such a row is skipped and the answer is False."""
    _delete_stale(conn, inserted)
    rows = _delivery_rows(inserted)
    if not rows:
        return True
    if racing:
        taken = insert_unless_taken(conn, webhook_deliveries, rows, webhook_deliveries.c.task_id)
        return len(taken) == len(rows)
    conn.execute(webhook_deliveries.insert(), rows)
    return True


def _delete_stale(conn: Connection, inserted: Sequence[NewTask]) -> None:
    """Delete the rows of the same body as a delivery of `inserted` from before its replay
    window, to be replaced. Only those: a row another process has just written stays (the
    insert then meets it)."""
    stale = [
        {"endpoint": t.delivery.endpoint, "key": key, "since": since}
        for t in inserted
        if t.delivery is not None
        for key, since in delivery_keys(t).items()
        if key.startswith(BODY_KEY_PREFIX)
    ]
    if stale:
        d = webhook_deliveries.c
        statement = webhook_deliveries.delete().where(
            d.endpoint == bindparam("endpoint"),
            d.delivery_id == bindparam("key"),
            d.received_at < bindparam("since"),
        )
        conn.execute(statement, stale)


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


def _task_values(t: NewTask) -> dict[str, Any]:
    """The new task's row as SQLAlchemy takes it (metadata as a value, not JSON text)."""
    values = dict(zip(TASK_COLUMNS, _task_row(t), strict=True))
    values["metadata"] = t.metadata
    return values


def _task_row(t: NewTask) -> Row:
    """The new task's row for TASK_COLUMNS, in stored form: pending (or scheduled, for
    later), no attempt yet."""
    return (
        t.id,
        t.task_type,
        t.status.value,
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
