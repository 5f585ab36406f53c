"""Group commit: one writer drains every pending write into one transaction.

One transaction per write caps a process near a thousand writes a second (each commit is an
fsync plus the round trips to the database). Callers instead submit a `WriteOp` and await
its future; the writer takes everything queued, runs it in one BEGIN IMMEDIATE ... COMMIT
(ops of the same class that arrive together run as one batch, e.g. one executemany), and
resolves each future only after the commit. Latency stays about one commit; throughput grows
with load.

The transaction runs in the writer's own thread on a synchronous connection (see
app/db/engine.py): one hop from the event loop per transaction, not one per statement. So
`WriteOp.apply` is plain synchronous code; it must not touch the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import Connection, Engine

from app.errors import TaskError
from app.events.log import LAST_EVENT_ID, TaskEvent, append_events

T = TypeVar("T")
logger = logging.getLogger(__name__)
CommitHook = Callable[[list[TaskEvent]], None]


class WriteOp(Generic[T]):
    """One unit of work for the writer. Subclasses implement `apply` (one op) or override
    `apply_batch` (several ops of this class at once); both run in the writer thread. An op
    records the events it caused in `self.events`; they are logged in the same transaction."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self._result: T | None = None
        self._error: BaseException | None = None

    def apply(self, conn: Connection) -> T:
        raise NotImplementedError

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        for op in ops:
            op.run_one(conn)

    def run_one(self, conn: Connection) -> None:
        """Apply this op alone, keeping a domain error (TaskError) as its outcome."""
        try:
            self.set_result(self.apply(conn))
        except TaskError as exc:
            self.set_error(exc)

    def set_result(self, value: T) -> None:
        self._result, self._error = value, None

    def set_error(self, error: BaseException) -> None:
        self._result, self._error = None, error

    def outcome(self) -> T:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


def _by_type(ops: list[WriteOp[Any]]) -> dict[type[WriteOp[Any]], list[WriteOp[Any]]]:
    """Ops grouped by class, each group where its first op arrived, order kept within a
    group: every completion in a transaction becomes one executemany. Ops of different
    classes commute (each is fenced on the row's status), so the reordering is safe."""
    groups: dict[type[WriteOp[Any]], list[WriteOp[Any]]] = {}
    for op in ops:
        groups.setdefault(type(op), []).append(op)
    return groups


class _Pending:
    __slots__ = ("future", "op")

    def __init__(self, op: WriteOp[Any], future: asyncio.Future[Any]) -> None:
        self.op, self.future = op, future


class GroupCommitWriter:
    """Owns the single write connection and the thread it is used from. `submit` from the
    event loop; ops run in the writer thread."""

    def __init__(
        self, engine: Engine, *, on_commit: CommitHook | None = None, max_batch: int = 2000
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._conn: Connection | None = None
        self.commits = 0

    async def start(self) -> None:
        if self._runner is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="litetask-writer")
            self._conn = await self._in_thread(self._engine.connect)
            self._runner = asyncio.create_task(self._run(), name="litetask-writer")

    async def stop(self) -> None:
        """Finish every op already submitted, then release the connection and the thread."""
        if self._runner is None:
            return
        self._queue.put_nowait(None)
        try:
            await self._runner
        finally:
            self._runner = None
            conn, self._conn = self._conn, None
            if conn is not None:
                await self._in_thread(conn.close)
            thread, self._thread = self._thread, None
            if thread is not None:
                thread.shutdown(wait=False)

    def submit(self, op: WriteOp[T]) -> Awaitable[T]:
        """Queue `op`; the returned awaitable gives its outcome once it is committed."""
        if self._runner is None or self._runner.done():
            raise RuntimeError("the database writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(op, future))
        return future

    async def run(self, op: WriteOp[T]) -> T:
        return await self.submit(op)

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = await self._take_batch()
            if batch:
                await self._commit_batch(batch)

    async def _take_batch(self) -> tuple[list[_Pending], bool]:
        first = await self._queue.get()
        if first is None:
            return self._drain_rest(), True
        batch = [first]
        while len(batch) < self._max_batch and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return batch + self._drain_rest(), True
            batch.append(item)
        return batch, False

    def _drain_rest(self) -> list[_Pending]:
        rest: list[_Pending] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                rest.append(item)
        return rest

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.cancelled()]
        try:
            await self._in_thread(self._transaction, [p.op for p in live])
        except Exception:
            logger.warning(
                "batch of %s writes failed; retrying each alone", len(live), exc_info=True
            )
            await self._commit_one_by_one(live)
            return
        self._resolve(live)

    async def _commit_one_by_one(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                await self._in_thread(self._transaction, [pending.op])
            except Exception as exc:
                pending.op.set_error(exc)
            self._resolve([pending])

    def _transaction(self, ops: list[WriteOp[Any]]) -> None:
        """Runs in the writer thread: every op, then their events, in one transaction."""
        conn = self._conn
        assert conn is not None
        for op in ops:
            op.events = []
        try:
            with conn.begin():
                for batch_type, run in _by_type(ops).items():
                    batch_type.apply_batch(conn, run)
                self._log_events(conn, ops)
        except BaseException:
            conn.info.pop(LAST_EVENT_ID, None)
            raise
        finally:
            self.commits += 1

    @staticmethod
    def _log_events(conn: Connection, ops: list[WriteOp[Any]]) -> None:
        logged = iter(append_events(conn, [e for op in ops for e in op.events]))
        for op in ops:
            op.events = [next(logged) for _ in op.events]

    def _resolve(self, batch: list[_Pending]) -> None:
        published: list[TaskEvent] = []
        for pending in batch:
            published.extend(pending.op.events)
            if pending.future.done():
                continue
            try:
                pending.future.set_result(pending.op.outcome())
            except BaseException as exc:
                pending.future.set_exception(exc)
        if published and self._on_commit is not None:
            self._on_commit(published)
