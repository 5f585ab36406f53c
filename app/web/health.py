"""Health probes: GET /health/live, and GET /health/ready (also served as /health, its
name before there were two).

- Liveness: 200 whenever the process answers at all, draining included, so a supervisor's
  liveness probe never kills a service that is finishing its work after SIGTERM.
- Readiness: 200 while the service can take and run work (the database is writable, the
  writer and the worker pool run, no outcomes wait for the database, the event loop is not
  lagging, and it is not draining); 503 otherwise, so a load balancer sends work elsewhere.

Anyone may ask; only an authenticated caller (or anyone, when no token is set) sees the
worker and queue counts and the problems, the rest see `{"status": ...}` alone.

Writability is proven, not assumed: a no-op write goes through the group-commit writer
(BEGIN IMMEDIATE ... COMMIT), so a stuck writer or a read-only database shows up here. The
probe and the queue depth are refreshed at most every LITETASK_HEALTH_INTERVAL seconds and
shared by concurrent checks, so a busy load balancer costs the database almost nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.db.writer import WriteOp
from app.errors import TaskError
from app.watchdog import LoopWatchdog
from app.web.auth import is_authenticated
from app.web.encoding import ApiJSONResponse
from app.web.state import is_draining, worker_of
from app.worker.core import AsyncTaskWorker

logger = logging.getLogger(__name__)
PROBE_TIMEOUT = 2.0
NO_CHANGE = text("UPDATE tasks SET status = status WHERE false")


class WriteProbe(WriteOp[bool]):
    """Takes the write lock and commits nothing. SQLite's BEGIN IMMEDIATE takes it; on
    PostgreSQL an empty transaction locks nothing, so it also runs a write that changes no
    row: it waits for a lock on the tasks table as a submit would (lock_timeout), and a
    read-only database refuses it."""

    def apply(self, conn: Connection) -> bool:
        if conn.dialect.name == "postgresql":
            conn.execute(NO_CHANGE)
        return True


@dataclass(frozen=True, slots=True)
class Probe:
    depth: dict[str, int]
    problem: str | None
    at: float = field(default_factory=time.monotonic)


class HealthMonitor:
    """The latest database probe, refreshed when older than `interval` seconds."""

    def __init__(self, worker: AsyncTaskWorker, interval: float) -> None:
        self.worker, self.interval = worker, interval
        self._lock = asyncio.Lock()
        self._latest: Probe | None = None

    def latest(self) -> Probe | None:
        """The latest probe taken, without probing again."""
        return self._latest

    async def probe(self) -> Probe:
        async with self._lock:
            latest = self._latest
            if latest is None or time.monotonic() - latest.at >= self.interval:
                latest = self._latest = await self._probe()
            return latest

    async def _probe(self) -> Probe:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.worker.writer.run(WriteProbe())
                return Probe(await self.worker.queue_depth(), None)
        except TimeoutError:
            return Probe({}, f"the database did not answer within {PROBE_TIMEOUT} s")
        except (SQLAlchemyError, OSError, RuntimeError, TaskError) as exc:
            logger.warning("health probe failed: %s", exc)
            return Probe({}, f"the database is not writable: {type(exc).__name__}")


async def live(_request: Request) -> Response:
    """The process answers: nothing else is checked (see the module docstring)."""
    return ApiJSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    worker = worker_of(request)
    problems, depth = await _readiness(request, worker)
    status = 503 if problems else 200
    if not is_authenticated(request):
        return ApiJSONResponse({"status": "unavailable" if problems else "ok"}, status)
    pool = worker.pool
    body: dict[str, Any] = {
        "status": "unavailable" if problems else "ok",
        "workers": {
            "max": pool.worker_count if pool else 0,
            "active": pool.active_count if pool else 0,
        },
        "queue": depth,
    }
    if problems:
        body["problems"] = problems
    return ApiJSONResponse(body, status)


async def _readiness(request: Request, worker: AsyncTaskWorker) -> tuple[list[str], dict[str, int]]:
    """What keeps the service from being ready, and the queue depth. While draining, the
    drain is the answer (and why the writer died, when that started it): the pool is meant
    to stop then, and the database is not probed again."""
    monitor: HealthMonitor = request.state.health
    failure = [] if worker.failure is None else [str(worker.failure)]
    if is_draining(request):
        latest = monitor.latest()
        return ["the service is draining", *failure], latest.depth if latest else {}
    probe = await monitor.probe()
    problems = [] if worker.running else ["the worker pool is stopped"]
    problems.extend(failure)
    problems.extend(_outcome_problems(worker))
    if probe.problem is not None:
        problems.append(probe.problem)
    problems.extend(_loop_problem(request))
    return problems, probe.depth


def _loop_problem(request: Request) -> list[str]:
    watchdog: LoopWatchdog | None = request.state.watchdog
    report = watchdog.report() if watchdog is not None else None
    if report is None or not report.lagging:
        return []
    return [
        f"the event loop was blocked for {report.worst_seconds:.1f} s "
        "(a task calling blocking code? the log shows where)"
    ]


def _outcome_problems(worker: AsyncTaskWorker) -> list[str]:
    """Outcomes of finished attempts that the database refuses for now (kept and retried)."""
    count, reason = worker.pool.outcomes.refused() if worker.pool else (0, None)
    if not count:
        return []
    return [f"{count} task outcomes are waiting for the database to take them ({reason})"]


routes: list[BaseRoute] = [
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
    Route("/health", ready, methods=["GET"]),
]
