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

When a transaction fails, the writer asks why (`database_state_error` in app/db/engine.py):
- The database's state (busy past busy_timeout, full, read-only, an I/O error): the whole
  batch is tried again with backoff. A write still not committed `retry_seconds` after it
  was submitted fails alone with DatabaseUnavailableError; nothing of it was written.
- One write's own fault (a constraint, a trigger, a value SQLite cannot hold): the batch is
  split in halves until that write is alone, so one bad write costs about 2·log2(n)
  transactions, not n; it fails with its error and the others commit.
A stop is bounded whatever the database does: `finish_by` gives every write still waiting
a last moment (writes in the retry loop give up then), and `stop` abandons, after its
timeout, a transaction that does not return (a hung disk): what waits fails, and the thread
closes the connection if the transaction ever returns.
A QuietOp (a WAL checkpoint) is no write: it runs alone on the writer's connection after
the batch it came with has committed, outside any transaction, and only when no other write
waits at that moment; otherwise it is skipped (its outcome is None).
Only events of committed transactions reach the commit hook; a hook that raises is logged,
never fatal. A batch hook, when given, learns the size and latency of every committed
transaction (for the metrics); it runs on the event loop after the commit, never inside it.
Anything else that goes wrong in the writer's loop is a bug, and the writer dies loudly:
every waiting write fails with WriterFailedError, `failure` is set, and `wait_failed()`
returns it, so the service can stop and be restarted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.pool import NullPool

from app.db.engine import TransactionRefused
from app.db.write_op import QuietOp, WriteOp, by_type
from app.errors import DatabaseUnavailableError, WorkerNotRunningError, WriterFailedError
from app.events.log import LAST_EVENT_ID, TaskEvent, append_events

__all__ = ["GroupCommitWriter", "QuietOp", "WriteOp"]

T = TypeVar("T")
logger = logging.getLogger(__name__)
CommitHook = Callable[[list[TaskEvent]], None]
FailureHook = Callable[[WriterFailedError], None]
BatchHook = Callable[[int, float], None]  # (writes committed together, seconds it took)
DEFAULT_RETRY_SECONDS = 5.0
FIRST_RETRY_DELAY = 0.01
MAX_RETRY_DELAY = 0.5
TRANSACTION_SLACK = 1.0  # seconds past a write's deadline that a stop still waits for it


class _Pending:
    __slots__ = ("deadline", "future", "op")

    def __init__(self, op: WriteOp[Any], future: asyncio.Future[Any], deadline: float) -> None:
        self.op, self.future, self.deadline = op, future, deadline


class GroupCommitWriter:
    """Owns the single write connection and the thread it is used from. `submit` from the
    event loop; ops run in the writer thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_commit: CommitHook | None = None,
        on_failure: FailureHook | None = None,
        on_batch: BatchHook | None = None,
        max_batch: int = 2000,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._retry_seconds = retry_seconds
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._conn: Connection | None = None
        self._inflight: list[_Pending] = []
        self._failure: WriterFailedError | None = None
        self._failed = asyncio.Event()
        self._finish_by = float("inf")  # event-loop time by which every write gives up
        self.commits = 0  # transactions attempted

    def longest_wait(self) -> float:
        """The longest a write submitted now can wait: until it is given up (the retry
        budget, or less once `finish_by` is nearer) and TRANSACTION_SLACK for a transaction
        in progress. What waits on writes at a stop waits no longer."""
        loop = asyncio.get_running_loop()
        give_up = min(self._finish_by, loop.time() + self._retry_seconds)
        return max(0.0, give_up - loop.time()) + TRANSACTION_SLACK

    @property
    def failure(self) -> WriterFailedError | None:
        """Why the writer died, or None while it works."""
        return self._failure

    def run_aside(self, op: WriteOp[T]) -> T:
        """Apply `op` on a connection of its own, outside the group commit: for the little a
        caller must still write after the writer died (releasing the owner row at stop).
        Blocking: call it in a thread. (The writer's own connection may never have been
        given back, so this one is made apart from its pool.)"""
        engine = create_engine(self._engine.url, poolclass=NullPool)
        try:
            with engine.connect() as conn, conn.begin():
                return op.apply(conn)
        finally:
            engine.dispose()

    async def wait_failed(self) -> WriterFailedError:
        """Returns once the writer has died (never, while it works)."""
        await self._failed.wait()
        assert self._failure is not None
        return self._failure

    async def start(self) -> None:
        if self._runner is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="litetask-writer")
            self._conn = await self._in_thread(self._engine.connect)
            self._runner = asyncio.create_task(self._run(), name="litetask-writer")

    def finish_by(self, deadline: float) -> None:
        """Give up (DatabaseUnavailableError) every write not committed by `deadline`, in
        event-loop time, however recently it was submitted: the last writes of a stop."""
        self._finish_by = min(self._finish_by, deadline)

    async def stop(self, timeout: float | None = None) -> None:
        """Finish every op already submitted, then release the connection and the thread.
        After `timeout` seconds (default: until `finish_by`, or the retry budget, and one
        more) a transaction that has not returned is abandoned and its writes fail."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._queue.put_nowait(None)
        limit = self.longest_wait() if timeout is None else timeout
        finished, _ = await asyncio.wait({runner}, timeout=limit)
        if finished:
            await self._release()
        else:
            self._abandon(runner, limit)

    def _abandon(self, runner: asyncio.Task[None], limit: float) -> None:
        """The transaction in the writer's thread did not return (a hung disk): fail what
        waits; the thread closes its connection if the transaction ever returns."""
        logger.error("the database writer did not finish within %.1f s; writes given up", limit)
        runner.cancel()
        for pending in [*self._inflight, *self._drain_rest()]:
            if not pending.future.done():
                pending.future.set_exception(
                    DatabaseUnavailableError("the database did not take this write before the stop")
                )
        self._inflight = []
        conn, self._conn = self._conn, None
        thread, self._thread = self._thread, None
        if thread is not None:
            if conn is not None:
                thread.submit(conn.close)
            thread.shutdown(wait=False)

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        thread, self._thread = self._thread, None
        try:
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(thread, conn.close)
        except Exception:
            logger.warning("could not close the writer's connection", exc_info=True)
        finally:
            if thread is not None:
                thread.shutdown(wait=False)

    def submit(self, op: WriteOp[T]) -> Awaitable[T]:
        """Queue `op`; the returned awaitable gives its outcome once it is committed."""
        if self._failure is not None:
            raise WriterFailedError(str(self._failure))
        if self._runner is None or self._runner.done():
            # Stopped (the service is draining, or was never started): callers over HTTP
            # get 503 and try again, by then on a restarted service.
            raise WorkerNotRunningError("the database writer is not running (stopping?)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        deadline = min(loop.time() + self._retry_seconds, self._finish_by)
        self._queue.put_nowait(_Pending(op, future, deadline))
        return future

    async def run(self, op: WriteOp[T]) -> T:
        return await self.submit(op)

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def _run(self) -> None:
        """The writer's loop, supervised: an unexpected error fails every waiting write."""
        try:
            await self._serve()
        except Exception as exc:
            self._die(exc)

    async def _serve(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = await self._take_batch()
            self._inflight = batch
            live = [p for p in batch if not p.future.cancelled()]
            await self._commit([p for p in live if not isinstance(p.op, QuietOp)])
            await self._run_quiet([p for p in live if isinstance(p.op, QuietOp)])
            self._inflight = []

    async def _run_quiet(self, group: list[_Pending]) -> None:
        """Each QuietOp alone, between transactions, while no write waits (else skipped)."""
        for pending in group:
            op: QuietOp[Any] = pending.op  # type: ignore[assignment]  # sorted by _serve
            if self._queue.empty():
                await self._in_thread(self._alone, op)
            else:
                op.set_result(None)
            self._resolve([pending])

    def _alone(self, op: QuietOp[Any]) -> None:
        conn = self._conn
        assert conn is not None and not conn.in_transaction()
        raw = conn.connection.driver_connection
        assert raw is not None
        op.run_alone(raw)

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

    async def _commit(self, group: list[_Pending]) -> None:
        """Commit `group` in one transaction: tried again while the database's state refuses
        it, split while one of its writes does. Every future in it is settled on return."""
        delay = FIRST_RETRY_DELAY
        while group:
            refused = await self._attempt(group)
            if refused is None:
                self._resolve(group)
                return
            if refused.reason is None:
                await self._isolate(group, refused.cause)
                return
            group = self._give_up_expired(group, refused)
            if group:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _attempt(self, group: list[_Pending]) -> TransactionRefused | None:
        started = time.perf_counter()
        try:
            await self._in_thread(self._transaction, [p.op for p in group])
        except TransactionRefused as refused:
            return refused
        if self._on_batch is not None:
            self._observe(len(group), time.perf_counter() - started)
        return None

    def _observe(self, size: int, seconds: float) -> None:
        assert self._on_batch is not None
        try:
            self._on_batch(size, seconds)
        except Exception:
            logger.exception("a batch hook raised; the writer goes on")

    async def _isolate(self, group: list[_Pending], cause: Exception) -> None:
        """One write of `group` fails by itself: halve the group until it is alone, so the
        others still commit in a few transactions."""
        if len(group) == 1:
            group[0].op.set_error(cause)
            self._resolve(group)
            return
        middle = len(group) // 2
        await self._commit(group[:middle])
        await self._commit(group[middle:])

    def _give_up_expired(
        self, group: list[_Pending], refused: TransactionRefused
    ) -> list[_Pending]:
        """Fail the writes whose retry time is spent; return the ones still worth trying."""
        now = asyncio.get_running_loop().time()
        live = [p for p in group if not p.future.cancelled()]
        expired = [p for p in live if min(p.deadline, self._finish_by) <= now]
        if expired:
            logger.warning(
                "%s writes given up after %s s: the database is unavailable (%s: %s)",
                len(expired),
                self._retry_seconds,
                refused.reason,
                refused.message,
            )
            for pending in expired:
                pending.op.set_error(refused.unavailable())
            self._resolve(expired)
        return [p for p in live if min(p.deadline, self._finish_by) > now]

    def _transaction(self, ops: list[WriteOp[Any]]) -> None:
        """Runs in the writer thread: every op, then their events, in one transaction. A
        failure rolls back and raises TransactionRefused; the ops keep no events of it."""
        conn = self._conn
        assert conn is not None
        self.commits += 1
        for op in ops:
            op.events = []
        try:
            with conn.begin():
                for batch_type, run in by_type(ops).items():
                    batch_type.apply_batch(conn, run)
                self._log_events(conn, ops)
        except Exception as exc:
            conn.info.pop(LAST_EVENT_ID, None)
            for op in ops:
                op.events = []
            raise TransactionRefused(exc) from exc

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
            except Exception as exc:
                pending.future.set_exception(exc)
        if published and self._on_commit is not None:
            try:
                self._on_commit(published)
            except Exception:
                logger.exception("a commit hook raised; the writer goes on")

    def _die(self, exc: Exception) -> None:
        """The loop met an error no write explains: fail every waiting write, say why."""
        logger.critical("the database writer stopped after an unexpected error", exc_info=exc)
        self._failure = WriterFailedError(
            f"the database writer stopped: {type(exc).__name__}: {exc}; restart the process"
        )
        self._failed.set()
        for pending in [*self._inflight, *self._drain_rest()]:
            if not pending.future.done():
                pending.future.set_exception(WriterFailedError(str(self._failure)))
        self._inflight = []
        if self._on_failure is not None:
            try:
                self._on_failure(self._failure)
            except Exception:
                logger.exception("a failure hook raised")


async def run_in_batches(
    writer: GroupCommitWriter, make: Callable[[], WriteOp[int]], batch: int
) -> int:
    """Run `make()` ops one after another until one does fewer than `batch` rows (each op
    deletes up to `batch` and says how many it did): many short transactions instead of a
    long one, with other writes in between. Returns the rows done in all."""
    total = 0
    while True:
        done = await writer.run(make())
        total += done
        if done < batch:
            return total
        await asyncio.sleep(0)  # let other writes in between batches
