"""AsyncTaskWorker: the coordinator. It owns the database, the writer, the queue and the
pool, recovers interrupted work before any worker starts, and is the public API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from app.cache.keys import build_cache_key, key_context
from app.cache.setup import CacheSettings, open_cache
from app.cache.task_adapter import AsyncCacheAdapter
from app.config import DEFAULT_DATABASE_URL
from app.db.engine import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_READER_POOL_SIZE,
    Engines,
    create_engines,
    sqlite_path,
)
from app.db.lock import ProcessLock
from app.db.migrate import upgrade
from app.db.mounts import check_local
from app.db.owner import Owner
from app.db.writer import DEFAULT_RETRY_SECONDS, BatchHook, GroupCommitWriter
from app.errors import (
    TaskArgumentsError,
    TaskStateError,
    WorkerNotRunningError,
    WriterFailedError,
)
from app.events.epoch import EnsureEpoch
from app.worker.batch import Item, TaskCall, calls_of, new_tasks
from app.worker.executor import RetryPolicy, TaskExecutor
from app.worker.options import TaskOptions, build_new_task, split_options
from app.worker.pool import PoolSettings, WorkerPool
from app.worker.postgres.backend import build_writer, follows_log, start_wake
from app.worker.postgres.wake import Wake
from app.worker.queue import TaskQueue
from app.worker.records import Accepted, NewTask
from app.worker.recovery import RecoverInterrupted
from app.worker.registry import TaskDefinition, TaskFunction, TaskRegistry, default_registry
from app.worker.routing import EventRouting, EventSink
from app.worker.scheduler import ScheduleInfo, Scheduler, read_schedules
from app.worker.slots import DEFAULT_CAP
from app.worker.status import TaskInfo, TaskStatus
from app.worker.stopping import CUT_GRACE, Stragglers
from app.worker.store import TaskPage, TaskStore
from app.worker.threads import DEFAULT_THREAD_WORKERS, ThreadRunner
from app.worker.upkeep import Upkeep, start_pool
from app.worker.waiters import TaskWaiters
from app.worker.waiting import TaskWaiting

logger = logging.getLogger(__name__)


class AsyncTaskWorker(TaskWaiting):
    """Durable background tasks on one database. Use `async with` or start()/stop()."""

    def __init__(
        self,
        database_url: str = DEFAULT_DATABASE_URL,
        max_workers: int = 10,
        task_timeout: float | None = None,
        registry: TaskRegistry | None = None,
        *,
        max_attempts: int = 1,
        retry_backoff: float = 1.0,
        max_interruptions: int = 3,
        lease_seconds: float = 300.0,
        event_sink: EventSink | None = None,
        commit_sink: EventSink | None = None,
        cache: CacheSettings | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        write_retry_seconds: float = DEFAULT_RETRY_SECONDS,
        reconcile_interval: float = 30.0,
        heartbeat_interval: float = 10.0,
        commit_observer: BatchHook | None = None,
        thread_workers: int = DEFAULT_THREAD_WORKERS,
        max_missed_slots: int = DEFAULT_CAP,
        reader_pool_size: int = DEFAULT_READER_POOL_SIZE,
    ) -> None:
        self.database_url = database_url
        self.registry = registry if registry is not None else default_registry
        self.default_max_attempts, self.max_missed_slots = max_attempts, max_missed_slots
        self.max_interruptions = max_interruptions
        self.reconcile_interval, self.heartbeat_interval = reconcile_interval, heartbeat_interval
        # A new boot id on every start(): what a boot holds is told apart from the last's.
        self.boot_id = uuid.uuid4().hex
        self.commit_observer = commit_observer  # told each commit's size and seconds
        self.busy_timeout, self.write_retry_seconds = busy_timeout, write_retry_seconds
        self.reader_pool_size = reader_pool_size  # readers; plus 1 writer (+1 LISTEN on PG)
        self.cache_settings = cache if cache is not None else CacheSettings()
        self._cache: AsyncCacheAdapter | None = None
        # Attempts that outlived a stop (they ignored cancellation) or their timeout (a
        # thread), kept across restarts.
        self._stragglers = Stragglers()
        self._threads = ThreadRunner(thread_workers, self._stragglers)  # for `def` tasks
        self.executor = TaskExecutor(
            default_timeout=task_timeout,
            retry_policy=RetryPolicy(base_seconds=retry_backoff),
            threads=self._threads,
        )
        self._pool_settings = PoolSettings(
            max_workers=max_workers, owner=self.boot_id, lease_seconds=lease_seconds
        )
        self._waiters = TaskWaiters()
        self._log_epoch: str | None = None
        self._engines: Engines | None = None
        self._lock: ProcessLock | None = None
        self._writer: GroupCommitWriter | None = None
        self._queue: TaskQueue | None = None
        self._store: TaskStore | None = None
        self._pool: WorkerPool | None = None
        self._upkeep: Upkeep | None = None
        self._wake: Wake | None = None  # PostgreSQL: wakes the pool for others' work
        # event_sink: every committed event to publish (on PostgreSQL, every process's, from
        # the log); commit_sink: the events this process's own writer committed, i.e. what
        # this process did (its metrics), on either backend.
        self._events = EventRouting(
            self._waiters,
            lambda: self._store,
            follows_log=follows_log(database_url),  # PostgreSQL: the follower publishes
            event_sink=event_sink,
            commit_sink=commit_sink,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def engines(self) -> Engines:
        """The database engines (writer, reader) while started."""
        if self._engines is None:
            raise WorkerNotRunningError()
        return self._engines

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer every database write goes through, while started."""
        if self._writer is None:
            raise WorkerNotRunningError()
        return self._writer

    @property
    def log_epoch(self) -> str:
        """The epoch of this database's event log (app/events/epoch.py), while started."""
        if self._log_epoch is None:
            raise WorkerNotRunningError()
        return self._log_epoch

    @property
    def events_follow_log(self) -> bool:
        """True where committed events reach subscribers from the log, a moment after
        their commit (PostgreSQL: every process publishes every process's events through
        its log follower); False where they are published at their commit (SQLite)."""
        return self._events.follows_log

    @property
    def event_sink(self) -> EventSink | None:
        """Where every committed event is published (the service's EventManager)."""
        return self._events.event_sink

    @event_sink.setter
    def event_sink(self, sink: EventSink | None) -> None:
        self._events.event_sink = sink

    @property
    def commit_sink(self) -> EventSink | None:
        """Where the events this process's own writer committed go (its metrics)."""
        return self._events.commit_sink

    @property
    def pool(self) -> WorkerPool | None:
        return self._pool

    @property
    def running(self) -> bool:
        return self._pool is not None and self._pool.is_running and self.failure is None

    @property
    def failure(self) -> WriterFailedError | None:
        """Why this worker can no longer write (its database writer died), or None. Nothing
        recovers from it but a stop and a new start (a service exits so it is restarted)."""
        return self._writer.failure if self._writer is not None else None

    async def start(self) -> None:
        """Check the database's filesystem, lock it, migrate it, take ownership and put
        interrupted tasks back (one transaction), then start the workers."""
        if self._pool is not None:
            return
        self.boot_id = uuid.uuid4().hex
        self._pool_settings = dataclasses.replace(self._pool_settings, owner=self.boot_id)
        try:
            await self._open_database()
            await self._recover_and_run()
        except BaseException:
            await self._close_database()
            raise

    async def _recover_and_run(self) -> None:
        assert self._queue is not None and self._store is not None
        me = await asyncio.to_thread(Owner.current, self.boot_id, self.heartbeat_interval)
        pool = WorkerPool(
            self._queue,
            self._store,
            self.executor,
            self.registry,
            self._pool_settings,
            publish_progress=self._events.publish_progress,
            stragglers=self._stragglers,
        )
        where = str(sqlite_path(self.database_url) or self.database_url)
        recovery = RecoverInterrupted(me, where, self.max_interruptions)
        self._threads.start()
        slots = Scheduler(
            self._queue, self.registry, self.max_missed_slots, self.default_max_attempts
        )
        self._upkeep = await start_pool(pool, recovery, self.reconcile_interval, slots)
        self._pool = pool
        self._wake = await start_wake(self.engines, pool, self._events.observe_logged)
        if self._wake is not None:
            self._upkeep.report_events_seen(self._wake.follower.position)
        self.registry.attach(self)  # handle.defer() without a worker finds this one

    async def _open_database(self) -> None:
        path = sqlite_path(self.database_url)
        if path is not None:
            await asyncio.to_thread(check_local, path)
            self._lock = ProcessLock(path)
            await self._lock.acquire()
        self._engines = create_engines(
            self.database_url,
            reader_pool_size=self.reader_pool_size,
            busy_timeout=self.busy_timeout,
        )
        await upgrade(self._engines.writer)
        self._writer = build_writer(
            self._engines,
            self.max_interruptions,
            on_commit=self._events.on_commit,
            on_failure=self._events.fail_waiters,
            on_batch=self.commit_observer,
            retry_seconds=self.write_retry_seconds,
        )
        await self._writer.start()
        self._log_epoch = await self._writer.run(EnsureEpoch())
        self._cache = open_cache(self.cache_settings, self._writer, self._engines.reader)
        self.executor.cache = self._cache
        self._queue = TaskQueue(self._writer)
        self._store = TaskStore(self._engines.reader)

    async def stop(self, timeout: float = 5.0, *, cut: asyncio.Event | None = None) -> None:
        """Stop claiming, let running tasks finish within `timeout` (or until `cut` is set),
        put the rest back to `pending`, give up ownership, then close the database. Bounded
        whatever tasks and the database do (`longest_stop`): a task that ignores its
        cancellation is put back all the same, and a write the database does not take in
        time is given up (the next start recovers what it concerned)."""
        self.registry.detach(self)
        pool, self._pool = self._pool, None
        upkeep, self._upkeep = self._upkeep, None
        if pool is not None:
            pool.stop_starting()
        if self._writer is not None and pool is not None:
            last_write = asyncio.get_running_loop().time() + timeout + 2 * CUT_GRACE
            self._writer.finish_by(last_write + self.write_retry_seconds)
        try:
            if upkeep is not None:
                await upkeep.stop()
            if pool is not None:
                await pool.stop(timeout, cut)
            if upkeep is not None:
                await upkeep.release()
        finally:
            await self._events.settle(CUT_GRACE)
            self._waiters.fail_all()
            await self._close_database()

    async def _close_database(self) -> None:
        """Close what is open, in order; the process lock is released whatever fails."""
        self._threads.stop()
        try:
            cache, self._cache = self._cache, None
            self.executor.cache = None
            if cache is not None:
                await self._close_cache(cache)
            if self._writer is not None:
                await self._writer.stop()
                self._writer = None
            wake, self._wake = self._wake, None
            if wake is not None:  # after the last commit: its events are read and handed on
                await wake.stop()
            if self._engines is not None:
                await self._engines.dispose()
                self._engines = None
        finally:
            self._writer = self._engines = None
            self._log_epoch = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            self._queue = self._store = None

    def stop_starting(self) -> None:
        """Start no task from now on (a stop follows): the first thing a drain does, so that
        nothing starts while the rest of the service winds down."""
        if self._pool is not None:
            self._pool.stop_starting()

    async def _close_cache(self, cache: AsyncCacheAdapter) -> None:
        """Close the cache, which flushes what it batches through the writer, within the
        writer's budget (a Redis that does not answer cannot hold the stop either)."""
        try:
            assert self._writer is not None
            async with asyncio.timeout(self._writer.longest_wait()):
                await cache.close()
        except TimeoutError:
            logger.error("the result cache did not close in time; closing the database anyway")

    # -- submitting ------------------------------------------------------------------------

    async def add_task(
        self,
        func_or_type: TaskFunction | str,
        /,
        *args: Any,
        options: TaskOptions | None = None,
        **kwargs: Any,
    ) -> str:
        """Queue a task; returns its id once its row is committed. With `options`, every
        other keyword is an argument of the function. Without, the keywords that name
        options (priority, task_id, metadata, timeout, delay, run_at, max_attempts,
        idempotency_key, use_cache, cache_ttl, cache_key_fn) are taken as options, and one
        that is also a parameter of the function raises TaskArgumentsError. With an
        idempotency key already used, returns the id of the task that key created and
        queues nothing."""
        definition = self.registry.get(self._type_name(func_or_type))
        if options is None:
            options, kwargs = split_options(definition, kwargs)
        elif not isinstance(options, TaskOptions):
            raise TaskArgumentsError(f"options must be a TaskOptions, not {type(options)}")
        accepted = await self._put(definition, args, kwargs, options)
        return accepted.task_id

    async def submit(
        self,
        func_or_type: TaskFunction | str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Accepted:
        """add_task with options apart; also says whether a new task was created."""
        definition = self.registry.get(self._type_name(func_or_type))
        return await self._put(definition, args, kwargs, options)

    async def add_tasks(
        self,
        func_or_type: TaskFunction | str,
        items: Sequence[Item],
        *,
        options: TaskOptions | None = None,
    ) -> list[str]:
        """Queue many tasks of one type, all or none, in one transaction; their ids in
        order. Each item is a tuple of arguments, a dict of keyword arguments or an
        (args, kwargs) pair (app/worker/batch.py); `options` apply to every task. Raises
        TaskBatchError, listing each bad item, before anything is written."""
        calls = calls_of(self._type_name(func_or_type), items, options)
        return [accepted.task_id for accepted in await self.submit_batch(calls)]

    async def submit_batch(self, calls: Sequence[TaskCall]) -> list[Accepted]:
        """Queue every call (of any types), all or none, in one transaction: add_tasks'
        contract, and whether each task was new."""
        batch = new_tasks(calls, self._build)
        return await self._require_queue().put_many(batch)

    def check_batch(self, calls: Sequence[TaskCall]) -> None:
        """Raise the TaskBatchError submit_batch would, writing nothing."""
        new_tasks(calls, self._build)

    async def _put(
        self,
        definition: TaskDefinition,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Accepted:
        queue = self._require_queue()
        return await queue.put(self._build(TaskCall(definition.name, args, kwargs, options)))

    def _build(self, call: TaskCall) -> NewTask:
        definition = self.registry.get(call.task_type)
        args, limit = list(call.args), self.default_max_attempts
        return build_new_task(
            definition, args, call.kwargs, call.options, default_max_attempts=limit
        )

    # -- reading -----------------------------------------------------------------------------

    async def get_task_info(self, task_id: str) -> TaskInfo | None:
        return await self._require_store().get(task_id)

    async def get_all_tasks(
        self,
        status: TaskStatus | Sequence[TaskStatus] | None = None,
        task_type: str | None = None,
        limit: int = 100,
        older_than: datetime | None = None,
    ) -> list[TaskInfo]:
        """Newest first."""
        page = await self.list_tasks(
            status=status, task_type=task_type, limit=limit, older_than=older_than
        )
        return page.tasks

    async def list_tasks(self, **filters: Any) -> TaskPage:
        """A page of tasks, newest first, with a cursor for the next page."""
        return await self._require_store().list(**filters)

    async def queue_depth(self) -> dict[str, int]:
        return await self._require_store().counts()

    async def schedules(self) -> list[ScheduleInfo]:
        """Each periodic task type by name, with its latest slot queued and the next one."""
        return await read_schedules(self.engines.reader, self.registry.definitions())

    # -- control -----------------------------------------------------------------------------

    async def cancel_task(self, task_id: str) -> bool:
        """Cancel a queued or running task. False when it had already finished; raises
        TaskNotFoundError for an unknown id."""
        queue = self._require_queue()
        try:
            previous = await queue.cancel(task_id)
        except TaskStateError:
            return False
        if previous in (TaskStatus.CLAIMED, TaskStatus.RUNNING) and self._pool is not None:
            self._pool.cancel_local(task_id)
        return True

    async def retry_task(self, task_id: str) -> TaskInfo:
        """Queue a failed or cancelled task again (TaskStateError otherwise); returns the
        task as queued."""
        return await self._require_queue().retry(task_id)

    # -- result cache ------------------------------------------------------------------------

    @property
    def cache(self) -> AsyncCacheAdapter | None:
        """The result cache while started (None when its backend is `none`)."""
        return self._cache

    async def invalidate_cache(
        self, func_or_type: TaskFunction | str, *args: Any, **kwargs: Any
    ) -> bool:
        """Forget the cached result of this call (as its task type's key function, or the
        default key, names it); True when there was one."""
        if self._cache is None:
            return False
        name = self._type_name(func_or_type)
        key_fn = self.registry.get(name).options.get("cache_key_fn")
        key = build_cache_key(key_context(name, args, kwargs), key_fn)
        return await self._cache.delete(key)

    async def clear_cache(self) -> None:
        """Forget every cached result."""
        if self._cache is not None:
            await self._cache.clear()

    # -- internals -------------------------------------------------------------------------

    def _type_name(self, func_or_type: TaskFunction | str) -> str:
        if isinstance(func_or_type, str):
            return func_or_type
        return self.registry.name_of(func_or_type)

    def _require_queue(self) -> TaskQueue:
        if self._queue is None:
            raise WorkerNotRunningError()
        return self._queue

    def _require_store(self) -> TaskStore:
        if self._store is None:
            raise WorkerNotRunningError()
        return self._store
