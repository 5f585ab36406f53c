"""Prometheus metrics of one service, in a CollectorRegistry of its own (built per app in the
lifespan; nothing global, so two apps in one process count apart).

Two kinds, as docs/operations.md lists them:
- What happened (counters, histograms): `TaskMetrics` learns it from the events this
  process's writer committed (told after each commit, so a change that rolled back is never
  counted), and from the writer's batch hook (size and latency of each committed
  transaction). Both hooks run on the event loop, outside any transaction, and do a few
  dictionary updates each. They are this process's work only: with several processes on
  PostgreSQL, each counts what it did, and the sum over processes is the total.
- What is (gauges): `LiveCollector` renders a `Snapshot` the scrape reads just before it
  renders: the database's (tasks by status and type, the oldest pending task: the whole
  queue, the same on every process) and this process's (busy workers, event streams, the
  loop's lag), so an idle service does no work for them between scrapes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.events.log import EventType, TaskEvent

logger = logging.getLogger(__name__)
US = 1_000_000
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Attempts whose start is remembered (for their run time) at most; each is forgotten at its
# outcome, cancel or recovery, so this bounds memory only if an outcome event goes missing.
MAX_TRACKED_ATTEMPTS = 100_000
EventHandler = Callable[[TaskEvent], None]
Labelled = TypeVar("Labelled", Counter, Histogram)
ActiveCount = tuple[str, str, int]  # (status, task_type, tasks)


class TaskMetrics:
    """Counters and histograms of tasks and of the writer; see the module docstring."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, labels: list[str], buckets: Sequence[float]
        ) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)

        self.attempts = counter(
            "litetask_task_attempts",
            "Finished attempts by outcome: completed, retried (failed, another attempt "
            "scheduled) or failed (failed, none left).",
            ["task_type", "outcome"],
        )
        self.finished = counter(
            "litetask_tasks_finished",
            "Tasks that reached a terminal status (completed, failed or cancelled).",
            ["task_type", "status"],
        )
        self.recoveries = counter(
            "litetask_task_recoveries",
            "Running tasks put back to pending: reason interrupted (found after a crash, at "
            "start) or shutdown (cut by a stop).",
            ["task_type", "reason"],
        )
        self.run_seconds = histogram(
            "litetask_task_run_seconds",
            "Seconds from an attempt's start (its claim) to its recorded outcome.",
            ["task_type"],
            SECONDS_BUCKETS,
        )
        self.queue_wait = histogram(
            "litetask_task_queue_wait_seconds",
            "Seconds a task waited from being due (run_at) to its attempt's start.",
            ["task_type"],
            SECONDS_BUCKETS,
        )
        self.batch_size = histogram(
            "litetask_writer_batch_size",
            "Writes committed together in one transaction (group commit).",
            [],
            BATCH_BUCKETS,
        )
        self.commit_seconds = histogram(
            "litetask_writer_commit_seconds",
            "Seconds from handing a batch to the writer thread to its commit.",
            [],
            COMMIT_BUCKETS,
        )
        self._started: dict[str, int] = {}
        # Children by (metric, label values): `labels()` costs more than the update itself.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._handlers: dict[str, EventHandler] = {
            EventType.STARTED: self._on_started,
            EventType.COMPLETED: self._on_completed,
            EventType.RETRYING: self._on_retrying,
            EventType.FAILED: self._on_failed,
            EventType.CANCELLED: self._on_cancelled,
            EventType.RECOVERED: self._on_recovered,
        }

    def observe_events(self, events: Sequence[TaskEvent]) -> None:
        """Count committed events (an event sink of the worker). Never raises: it runs
        right after a commit, on the writer's side of the loop."""
        try:
            for event in events:
                handle = self._handlers.get(event.type)
                if handle is not None:
                    handle(event)
        except Exception:
            logger.exception("metrics could not count %s events", len(events))

    def observe_commit(self, size: int, seconds: float) -> None:
        """The writer's batch hook: one committed transaction of `size` writes."""
        self.batch_size.observe(size)
        self.commit_seconds.observe(seconds)

    def _child(self, metric: Labelled, *labels: str) -> Labelled:
        key = (id(metric), labels)
        child: Labelled | None = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _on_started(self, event: TaskEvent) -> None:
        run_at = event.payload.get("run_at")
        if isinstance(run_at, int):
            wait = max(0, event.created_at - run_at) / US
            self._child(self.queue_wait, event.task_type).observe(wait)
        if len(self._started) < MAX_TRACKED_ATTEMPTS:
            self._started[event.task_id] = event.created_at

    def _attempt_ended(self, event: TaskEvent, outcome: str) -> None:
        self._child(self.attempts, event.task_type, outcome).inc()
        started = self._started.pop(event.task_id, None)
        if started is not None:
            seconds = max(0, event.created_at - started) / US
            self._child(self.run_seconds, event.task_type).observe(seconds)

    def _on_completed(self, event: TaskEvent) -> None:
        self._attempt_ended(event, "completed")
        self._child(self.finished, event.task_type, "completed").inc()

    def _on_retrying(self, event: TaskEvent) -> None:
        self._attempt_ended(event, "retried")

    def _on_failed(self, event: TaskEvent) -> None:
        if "attempt" in event.payload:  # not a task failed at start for its interruptions
            self._attempt_ended(event, "failed")
        self._child(self.finished, event.task_type, "failed").inc()

    def _on_cancelled(self, event: TaskEvent) -> None:
        self._started.pop(event.task_id, None)
        self._child(self.finished, event.task_type, "cancelled").inc()

    def _on_recovered(self, event: TaskEvent) -> None:
        self._started.pop(event.task_id, None)
        reason = str(event.payload.get("reason", "unknown"))
        self._child(self.recoveries, event.task_type, reason).inc()


@dataclass(frozen=True, slots=True)
class LoopLag:
    """What the loop watchdog measured: its latest ping's delay, and episodes over the
    threshold."""

    latest_seconds: float
    episodes: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The present state, read at scrape time. `tasks` and `active` are None when the
    database could not be read for this scrape; `loop` is None with the watchdog off."""

    tasks: dict[str, int] | None
    active: Sequence[ActiveCount] | None
    oldest_pending_seconds: float | None
    workers_busy: int
    workers_max: int
    outcomes_waiting: int
    sse_clients: int
    subscribers_dropped: int
    loop: LoopLag | None


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class LiveCollector(Collector):
    """Gauges of the present: renders the snapshot the scrape set just before collecting
    (the scrape sets it and renders in one step of the event loop)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        yield from _task_gauges(snap)
        yield _gauge("litetask_workers_busy", "Attempts running now.", snap.workers_busy)
        yield _gauge("litetask_workers_max", "Attempts that may run at once.", snap.workers_max)
        yield _gauge(
            "litetask_outcomes_waiting",
            "Finished attempts whose outcome the database refuses for now (kept, retried).",
            snap.outcomes_waiting,
        )
        yield _gauge("litetask_sse_clients", "Open event streams (SSE).", snap.sse_clients)
        yield CounterMetricFamily(
            "litetask_subscribers_dropped",
            "Event subscribers dropped for falling behind (their clients resume from the log).",
            value=snap.subscribers_dropped,
        )
        if snap.loop is not None:
            yield from _loop_metrics(snap.loop)


def _task_gauges(snap: Snapshot) -> Iterator[Metric]:
    if snap.tasks is not None:
        by_status = GaugeMetricFamily(
            "litetask_tasks", "Tasks in the database by status.", labels=["status"]
        )
        for status, count in snap.tasks.items():
            by_status.add_metric([status], count)
        yield by_status
    if snap.active is not None:
        active = GaugeMetricFamily(
            "litetask_tasks_active",
            "Pending and running tasks by status and task type.",
            labels=["status", "task_type"],
        )
        for status, task_type, count in snap.active:
            active.add_metric([status, task_type], count)
        yield active
    if snap.oldest_pending_seconds is not None:
        yield _gauge(
            "litetask_oldest_pending_seconds",
            "Seconds the oldest due pending task has waited (0 when none is due).",
            snap.oldest_pending_seconds,
        )


def _loop_metrics(loop: LoopLag) -> Iterator[Metric]:
    yield _gauge(
        "litetask_event_loop_lag_seconds",
        "Seconds the event loop took to answer the watchdog's latest ping.",
        loop.latest_seconds,
    )
    yield CounterMetricFamily(
        "litetask_event_loop_blocked",
        "Times the event loop did not answer within LITETASK_LOOP_LAG_THRESHOLD.",
        value=loop.episodes,
    )


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    """One app's registry with its two kinds of metrics and the process's own."""

    registry: CollectorRegistry
    tasks: TaskMetrics
    live: LiveCollector

    @classmethod
    def build(cls) -> ServiceMetrics:
        registry = CollectorRegistry()
        live = LiveCollector()
        registry.register(live)
        ProcessCollector(registry=registry)  # process_* memory, CPU, open files
        return cls(registry, TaskMetrics(registry), live)
