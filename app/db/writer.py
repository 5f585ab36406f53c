"""Group commit: one writer drains every pending write into one transaction.

One transaction per write caps a process near a thousand writes a second (each commit is an
fsync plus the round trips to the database). Callers instead submit a `WriteOp` and await
its future; the writer takes everything queued, runs it in one BEGIN IMMEDIATE ... COMMIT
(ops of the same class that arrive together run as one batch, e.g. one executemany), and
resolves each future only after the commit. Latency stays about one commit; throughput grows
with load.

The writer is a thread of its own with a synchronous connection (see app/db/engine.py): a
write goes into a thread-safe queue (no event-loop step before the thread takes it), and one
`call_soon_threadsafe` per committed transaction settles every future of it: one hop each way
per batch, not one per op or statement (app/db/commit_loop.py runs the thread's side). So
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
import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from app.db.commit_loop import CommitLoop, Inbox, Pending, drain
from app.db.write_op import QuietOp, WriteOp
from app.errors import DatabaseUnavailableError, WorkerNotRunningError, WriterFailedError
from app.events.log import TaskEvent

__all__ = ["GroupCommitWriter", "QuietOp", "WriteOp"]

T = TypeVar("T")
logger = logging.getLogger(__name__)
CommitHook = Callable[[list[TaskEvent]], None]
FailureHook = Callable[[WriterFailedError], None]
BatchHook = Callable[[int, float], None]  # (writes committed together, seconds it took)
DEFAULT_RETRY_SECONDS = 5.0
TRANSACTION_SLACK = 1.0  # seconds past a write's deadline that a stop still waits for it


class GroupCommitWriter:
    """Owns the single write connection and the thread it is used from. `submit` from the
    event loop; ops run in the writer thread (app/db/commit_loop.py)."""

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
        self._inbox: Inbox = queue.SimpleQueue()
        self._work = CommitLoop(engine, self._inbox, self._settle_soon, max_batch)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._exited: asyncio.Future[None] | None = None  # set when the thread ends
        self._running = False
        self._failure: WriterFailedError | None = None
        self._failed = asyncio.Event()
        self._finish_by = float("inf")  # event-loop time by which every write gives up

    @property
    def commits(self) -> int:
        """Transactions attempted."""
        return self._work.commits

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
        """Start the writer thread; returns once it holds its connection (or raises why it
        could not open one)."""
        if self._thread is not None:
            return
        loop = self._loop = asyncio.get_running_loop()
        connected: asyncio.Future[None] = loop.create_future()
        self._exited = loop.create_future()
        self._work.abandoned = False
        self._thread = threading.Thread(
            target=self._main, args=(connected,), name="litetask-writer", daemon=True
        )
        self._thread.start()
        try:
            await connected
        except BaseException:
            self._thread = None
            raise
        self._running = True

    def _main(self, connected: asyncio.Future[None]) -> None:
        """The writer thread: connect, serve, close; a death is reported, never silent."""
        try:
            self._work.connect()
        except BaseException as exc:
            self._to_loop(_fail_future, connected, exc)
            self._to_loop(_finish_future, self._exited)
            return
        self._to_loop(_finish_future, connected)
        try:
            self._work.serve()
        except BaseException as exc:  # the thread dies: every waiting write learns it
            self._to_loop(self._die, exc)
        finally:
            self._work.close()
            self._to_loop(_finish_future, self._exited)

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        assert loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(callback, *args)

    def finish_by(self, deadline: float) -> None:
        """Give up (DatabaseUnavailableError) every write not committed by `deadline`, in
        event-loop time, however recently it was submitted: the last writes of a stop."""
        self._finish_by = min(self._finish_by, deadline)
        self._work.finish_by = self._finish_by  # the loop's clock is time.monotonic()

    async def stop(self, timeout: float | None = None) -> None:
        """Finish every op already submitted, then release the connection and the thread.
        After `timeout` seconds (default: until `finish_by`, or the retry budget, and one
        more) a transaction that has not returned is abandoned and its writes fail."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._running = False
        self._inbox.put(None)
        limit = self.longest_wait() if timeout is None else timeout
        assert self._exited is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), limit)
        except TimeoutError:
            self._abandon(limit)

    def _abandon(self, limit: float) -> None:
        """The transaction in the writer's thread did not return (a hung disk): fail what
        waits; the thread closes its connection if the transaction ever returns."""
        logger.error("the database writer did not finish within %.1f s; writes given up", limit)
        self._work.abandoned = True
        for pending in [*self._work.inflight, *drain(self._inbox)]:
            if not pending.future.done():
                pending.future.set_exception(
                    DatabaseUnavailableError("the database did not take this write before the stop")
                )

    def submit(self, op: WriteOp[T]) -> Awaitable[T]:
        """Queue `op`; the returned awaitable gives its outcome once it is committed."""
        if self._failure is not None:
            raise WriterFailedError(str(self._failure))
        if not self._running:
            # Stopped (the service is draining, or was never started): callers over HTTP
            # get 503 and try again, by then on a restarted service.
            raise WorkerNotRunningError("the database writer is not running (stopping?)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        deadline = min(loop.time() + self._retry_seconds, self._finish_by)
        self._inbox.put(Pending(op, future, deadline))
        return future

    async def run(self, op: WriteOp[T]) -> T:
        return await self.submit(op)

    def _settle_soon(self, group: list[Pending], seconds: float | None) -> None:
        """In the writer thread: one hop settles the whole group on the event loop."""
        self._to_loop(self._settle, group, seconds)

    def _settle(self, group: list[Pending], seconds: float | None) -> None:
        if seconds is not None and self._on_batch is not None:
            try:
                self._on_batch(len(group), seconds)
            except Exception:
                logger.exception("a batch hook raised; the writer goes on")
        published: list[TaskEvent] = []
        for pending in group:
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

    def _die(self, exc: BaseException) -> None:
        """The thread met an error no write explains: fail every waiting write, say why."""
        logger.critical("the database writer stopped after an unexpected error", exc_info=exc)
        self._running = False
        self._failure = WriterFailedError(
            f"the database writer stopped: {type(exc).__name__}: {exc}; restart the process"
        )
        self._failed.set()
        for pending in [*self._work.inflight, *drain(self._inbox)]:
            if not pending.future.done():
                pending.future.set_exception(WriterFailedError(str(self._failure)))
        self._work.inflight = []
        if self._on_failure is not None:
            try:
                self._on_failure(self._failure)
            except Exception:
                logger.exception("a failure hook raised")


def _finish_future(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _fail_future(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


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
