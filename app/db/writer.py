"""Group commit: one writer drains every pending write into one transaction.

SQLAlchemy async costs about a millisecond per transaction, so one transaction per write caps
a process near a thousand writes a second. Callers instead submit a `WriteOp` and await its
future; the writer takes everything queued, runs it in one BEGIN IMMEDIATE ... COMMIT (ops of
the same class that arrive together run as one batch, e.g. one executemany), and resolves
each future only after the commit. Latency stays about one commit; throughput grows with load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.events.log import LAST_EVENT_ID, TaskEvent, append_events

T = TypeVar("T")
logger = logging.getLogger(__name__)
CommitHook = Callable[[list[TaskEvent]], None]


class WriteOp(Generic[T]):
    """One unit of work for the writer. Subclasses implement `apply` (one op) or override
    `apply_batch` (several ops of this class at once). An op records the events it caused in
    `self.events`; they are written to the log in the same transaction."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self._result: T | None = None
        self._error: BaseException | None = None

    async def apply(self, conn: AsyncConnection) -> T:
        raise NotImplementedError

    @classmethod
    async def apply_batch(cls, conn: AsyncConnection, ops: Sequence[Self]) -> None:
        for op in ops:
            await op.run_one(conn)

    async def run_one(self, conn: AsyncConnection) -> None:
        """Apply this op alone, keeping a domain error (TaskError) as its outcome."""
        from app.worker.errors import TaskError

        try:
            self.set_result(await self.apply(conn))
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
    """Owns the single write connection. `submit` from anywhere in the event loop."""

    def __init__(
        self, engine: AsyncEngine, *, on_commit: CommitHook | None = None, max_batch: int = 2000
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self.commits = 0

    async def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="litetask-writer")

    async def stop(self) -> None:
        """Finish every op already submitted, then release the connection."""
        if self._runner is None:
            return
        self._queue.put_nowait(None)
        try:
            await self._runner
        finally:
            self._runner = None

    def set_commit_hook(self, hook: CommitHook | None) -> None:
        self._on_commit = hook

    def submit(self, op: WriteOp[T]) -> Awaitable[T]:
        """Queue `op`; the returned awaitable gives its outcome once it is committed."""
        if self._runner is None or self._runner.done():
            raise RuntimeError("the database writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(op, future))
        return future

    async def run(self, op: WriteOp[T]) -> T:
        return await self.submit(op)

    async def _run(self) -> None:
        async with self._engine.connect() as conn:
            stopping = False
            while not stopping:
                batch, stopping = await self._take_batch()
                if batch:
                    await self._commit_batch(conn, batch)

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

    async def _commit_batch(self, conn: AsyncConnection, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.cancelled()]
        try:
            await self._transaction(conn, [p.op for p in live])
        except Exception:
            logger.warning(
                "batch of %s writes failed; retrying each alone", len(live), exc_info=True
            )
            await self._commit_one_by_one(conn, live)
            return
        self._resolve(live)

    async def _commit_one_by_one(self, conn: AsyncConnection, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                await self._transaction(conn, [pending.op])
            except Exception as exc:
                if conn.in_transaction():
                    await conn.rollback()
                pending.op.set_error(exc)
            self._resolve([pending])

    async def _transaction(self, conn: AsyncConnection, ops: list[WriteOp[Any]]) -> None:
        for op in ops:
            op.events = []
        try:
            async with conn.begin():
                for batch_type, run in _by_type(ops).items():
                    await batch_type.apply_batch(conn, run)
                await self._log_events(conn, ops)
        except BaseException:
            conn.info.pop(LAST_EVENT_ID, None)
            raise
        finally:
            self.commits += 1

    @staticmethod
    async def _log_events(conn: AsyncConnection, ops: list[WriteOp[Any]]) -> None:
        logged = iter(await append_events(conn, [e for op in ops for e in op.events]))
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
