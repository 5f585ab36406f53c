"""The writer thread's work (app/db/writer.py): take every write queued, commit them in one
transaction, hand the outcomes back to the event loop in one hop.

Everything here runs in the writer's own thread: taking a batch from the thread-safe inbox,
the transaction, the retries while the database's state refuses it (with backoff, until each
write's deadline), the splitting while one write's own fault does, and the QuietOps between
transactions. The event loop learns the outcome of a whole group through `settle`, which the
writer turns into one `call_soon_threadsafe`.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from app.db.engine import TransactionRefused
from app.db.write_op import QuietOp, WriteOp, by_type
from app.events.log import LAST_EVENT_ID, append_events

logger = logging.getLogger(__name__)
FIRST_RETRY_DELAY = 0.01
MAX_RETRY_DELAY = 0.5


class Pending:
    """A write and the event-loop future its caller awaits; `deadline` (monotonic seconds,
    the event loop's clock) is when it gives up waiting for the database."""

    __slots__ = ("deadline", "future", "op")

    def __init__(self, op: WriteOp[Any], future: Any, deadline: float) -> None:
        self.op, self.future, self.deadline = op, future, deadline


Inbox = queue.SimpleQueue[Pending | None]  # None: stop once what came before is done
# Called in the writer thread with writes whose outcome is final, and the seconds their
# transaction took (None: not committed, e.g. given up); it hops to the event loop itself.
Settle = Callable[[list[Pending], float | None], None]


class CommitLoop:
    """The writer thread's loop over its inbox. `finish_by` and `abandoned` are set from the
    event loop (plain attributes: a float and a flag, read between transactions)."""

    def __init__(self, engine: Engine, inbox: Inbox, settle: Settle, max_batch: int) -> None:
        self.engine, self.inbox, self.settle, self.max_batch = engine, inbox, settle, max_batch
        self.conn: Connection | None = None
        self.inflight: list[Pending] = []
        self.commits = 0  # transactions attempted
        self.finish_by = float("inf")  # monotonic time by which every write gives up
        self.abandoned = False  # the event loop gave up on this thread (a stop timed out)

    def connect(self) -> None:
        self.conn = self.engine.connect()

    def serve(self) -> None:
        """Commit batches until the stop sentinel (or an abandon); exceptions escape."""
        stopping = False
        while not stopping and not self.abandoned:
            batch, stopping = self._take_batch()
            self.inflight = batch
            live = [p for p in batch if not p.future.cancelled()]
            self._commit([p for p in live if not isinstance(p.op, QuietOp)])
            if self.abandoned:
                return
            self._run_quiet([p for p in live if isinstance(p.op, QuietOp)])
            self.inflight = []

    def close(self) -> None:
        """Close the connection for good (not back into the engine's pool): after an
        abandoned stop the engine was disposed meanwhile, and a connection checked in to a
        disposed pool would stay open until the garbage collector finds it."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.invalidate()
            conn.close()
        except Exception:
            logger.warning("could not close the writer's connection", exc_info=True)

    def _take_batch(self) -> tuple[list[Pending], bool]:
        first = self.inbox.get()
        if first is None:
            return drain(self.inbox), True
        self._gather()
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch + drain(self.inbox), True
            batch.append(item)
        return batch, False

    def _gather(self) -> None:
        """A moment between the first write of a batch and taking the rest (none here)."""

    def _run_quiet(self, group: list[Pending]) -> None:
        """Each QuietOp alone, between transactions, while no write waits (else skipped)."""
        for pending in group:
            op: QuietOp[Any] = pending.op  # type: ignore[assignment]  # sorted by serve
            if self.inbox.empty():
                conn = self.conn
                assert conn is not None and not conn.in_transaction()
                raw = conn.connection.driver_connection
                assert raw is not None
                op.run_alone(raw)
            else:
                op.set_result(None)
        if group:
            self.settle(group, None)

    def _commit(self, group: list[Pending]) -> None:
        """Commit `group` in one transaction: tried again while the database's state refuses
        it, split while one of its writes does. Every write in it is settled on return."""
        delay = FIRST_RETRY_DELAY
        while group and not self.abandoned:
            started = time.perf_counter()
            refused = self._attempt(group)
            if refused is None:
                self.settle(group, time.perf_counter() - started)
                return
            if refused.reason is None:
                self._isolate(group, refused.cause)
                return
            group = self._give_up_expired(group, refused)
            if group:
                time.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    def _attempt(self, group: list[Pending]) -> TransactionRefused | None:
        try:
            self._transaction([p.op for p in group])
        except TransactionRefused as refused:
            return refused
        return None

    def _isolate(self, group: list[Pending], cause: Exception) -> None:
        """One write of `group` fails by itself: halve the group until it is alone, so the
        others still commit in a few transactions."""
        if len(group) == 1:
            group[0].op.set_error(cause)
            self.settle(group, None)
            return
        middle = len(group) // 2
        self._commit(group[:middle])
        self._commit(group[middle:])

    def _give_up_expired(self, group: list[Pending], refused: TransactionRefused) -> list[Pending]:
        """Fail the writes whose retry time is spent; return the ones still worth trying."""
        now = time.monotonic()
        live = [p for p in group if not p.future.cancelled()]
        expired = [p for p in live if min(p.deadline, self.finish_by) <= now]
        if expired:
            logger.warning(
                "%s writes given up: the database is unavailable (%s: %s)",
                len(expired),
                refused.reason,
                refused.message,
            )
            for pending in expired:
                pending.op.set_error(refused.unavailable())
            self.settle(expired, None)
        return [p for p in live if min(p.deadline, self.finish_by) > now]

    def _transaction(self, ops: list[WriteOp[Any]]) -> None:
        """Every op, then their events, in one transaction. A failure rolls back and raises
        TransactionRefused; the ops keep no events of it."""
        conn = self.conn
        assert conn is not None
        self.commits += 1
        for op in ops:
            op.events = []
        try:
            with conn.begin():
                for batch_type, run in by_type(ops).items():
                    self._apply(batch_type, conn, run)
                self._log(conn, ops)
        except Exception as exc:
            conn.info.pop(LAST_EVENT_ID, None)
            for op in ops:
                op.events = []
            raise TransactionRefused(exc) from exc

    def _apply(self, batch_type: type[WriteOp[Any]], conn: Connection, run: list[Any]) -> None:
        """Run ops of one class together (a backend may give some classes its own SQL)."""
        batch_type.apply_batch(conn, run)

    def _log(self, conn: Connection, ops: list[WriteOp[Any]]) -> None:
        """Log the ops' events in this transaction, each op keeping its logged events."""
        logged = iter(append_events(conn, [e for op in ops for e in op.events]))
        for op in ops:
            op.events = [next(logged) for _ in op.events]


def drain(inbox: Inbox) -> list[Pending]:
    """Everything still queued (the stop sentinel dropped)."""
    rest: list[Pending] = []
    while True:
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return rest
        if item is not None:
            rest.append(item)
