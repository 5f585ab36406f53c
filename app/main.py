"""create_app(settings) -> Starlette, and serve(settings): one Hypercorn process.

The lifespan imports the task modules, starts the metrics port (when configured) and the
worker (lock, migrate, recover, pool) and yields the state handlers read
(`request.state.worker`, `.settings`, `.events`, `.draining`, `.metrics`...). Draining (SIGTERM,
or a dead writer: app/draining.py) stops the worker while HTTP still answers; the server
closes after that. Signals and the process's exit: app/shutdown.py.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.utils import LifespanFailureError
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from app.access import exposure_problem, warn_if_open
from app.config import ConfigError, Settings
from app.draining import Drain, finish_draining, serve_until_drained
from app.errors import TaskError, WriterFailedError
from app.events.log import TaskEvent
from app.events.manager import EventManager
from app.metrics import ServiceMetrics, TaskMetrics
from app.shutdown import StopRequests
from app.watchdog import LoopWatchdog
from app.web import (
    auth,
    batch,
    bulk,
    cache,
    dashboard,
    health,
    openapi,
    schedules,
    stats,
    task_types,
    tasks,
    webhooks,
)
from app.web import events as event_routes
from app.web import metrics as metrics_routes
from app.web.access_log import AccessLog
from app.web.errors import EXCEPTION_HANDLERS
from app.web.headers import SecurityHeaders
from app.web.health import HealthMonitor
from app.web.login_throttle import LoginThrottle
from app.web.metrics import MetricsExporter, start_metrics_server
from app.web.perimeter import perimeter
from app.web.sessions import Sessions
from app.web.state import AppState
from app.web.streams import StreamLimits
from app.worker.core import AsyncTaskWorker
from app.worker.registry import default_registry
from app.worker.stopping import longest_stop
from app.worker.throughput import Throughput

logger = logging.getLogger(__name__)
METRICS_SETTINGS = "LITETASK_METRICS_HOST/LITETASK_METRICS_PORT"
LIFESPAN_MARGIN = 5.0  # seconds Hypercorn waits for the lifespan's end past the longest stop


def load_task_modules(names: tuple[str, ...]) -> None:
    """Import every task module so its @task functions register; ConfigError names the one
    that failed."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ConfigError(
                f"cannot import task module {name!r} (LITETASK_TASK_MODULES): "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def build_worker(
    settings: Settings, events: EventManager, metrics: TaskMetrics, throughput: Throughput
) -> AsyncTaskWorker:
    return AsyncTaskWorker(
        settings.database_url,
        max_workers=settings.max_workers,
        thread_workers=settings.thread_workers,
        task_timeout=settings.task_timeout,
        registry=default_registry,
        max_attempts=settings.max_attempts,
        retry_backoff=settings.retry_backoff,
        max_interruptions=settings.max_interruptions,
        max_missed_slots=settings.max_missed_slots,
        reconcile_interval=settings.reconcile_interval,
        heartbeat_interval=settings.heartbeat_interval,
        event_sink=_sink(events, throughput),
        commit_sink=metrics.observe_events,
        cache=settings.cache(),
        busy_timeout=settings.busy_timeout,
        reader_pool_size=settings.reader_pool_size,
        write_retry_seconds=settings.write_retry_seconds,
        commit_observer=metrics.observe_commit,
    )


def _sink(events: EventManager, throughput: Throughput) -> Callable[[list[TaskEvent]], None]:
    """The worker's event sink, told every committed event (on PostgreSQL every process's):
    subscribers first, then the dashboard's throughput, which is the whole queue's (neither
    raises). The metrics' counters are told this process's own commits only (commit_sink),
    so each process counts what it did and their sum is the total."""

    def publish(batch: list[TaskEvent]) -> None:
        events.publish(batch)
        throughput.observe(batch)

    return publish


def create_app(
    settings: Settings,
    *,
    draining: asyncio.Event | None = None,
    drained: asyncio.Event | None = None,
    cut: asyncio.Event | None = None,
) -> Starlette:
    """The whole service as one ASGI app. Set `draining` to start a graceful stop: readiness
    turns 503, event streams end and the worker drains while HTTP still answers (liveness
    stays 200); set `cut` too to cut running tasks at once; `drained` is set once the worker
    has stopped, when the server may close."""
    drain = Drain(
        draining if draining is not None else asyncio.Event(),
        drained if drained is not None else asyncio.Event(),
        cut if cut is not None else asyncio.Event(),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        load_task_modules(settings.modules)
        events, metrics, throughput = EventManager(), ServiceMetrics.build(), Throughput()
        worker = build_worker(settings, events, metrics.tasks, throughput)
        streams = StreamLimits.from_settings(settings)
        async with AsyncExitStack() as stack:
            watchdog = start_watchdog(settings)
            if watchdog is not None:
                stack.callback(watchdog.stop)
            exporter = MetricsExporter(metrics, worker, events, streams, watchdog)
            stop_metrics_server = await start_metrics_server(exporter, settings)
            if stop_metrics_server is not None:
                stack.push_async_callback(stop_metrics_server)
            try:
                await worker.start()
            except TaskError as exc:  # e.g. the database is in use: serve() reports it plainly
                app.state.startup_error = exc
                raise
            drainer = asyncio.create_task(
                serve_until_drained(app, worker, events, settings, drain), name="drainer"
            )
            stack.push_async_callback(finish_draining, drain.draining, drainer)
            yield {
                "worker": worker,
                "settings": settings,
                "events": events,
                "draining": drain.draining,
                "health": HealthMonitor(worker, settings.health_interval),
                "watchdog": watchdog,
                "sessions": await _open_sessions(settings, worker),
                "login_throttle": LoginThrottle(),
                "streams": streams,
                "metrics": exporter,
                "throughput": throughput,
            }

    return Service(
        routes=all_routes(),
        middleware=perimeter(settings),
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
        access_log=settings.access_log,
    )


class Service(Starlette):
    """The Starlette app with SecurityHeaders outermost, around its error handling too, and
    the access log (LITETASK_ACCESS_LOG) around that, so it sees every final status; no
    access-log layer at all when it is off. Inside the error handling: app/web/perimeter.py."""

    def __init__(self, *args: Any, access_log: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = access_log

    def build_middleware_stack(self) -> ASGIApp:
        stack = SecurityHeaders(super().build_middleware_stack())
        return AccessLog(stack) if self.access_log else stack


def start_watchdog(settings: Settings) -> LoopWatchdog | None:
    """The loop watchdog, started (None when LITETASK_LOOP_LAG_THRESHOLD is 0)."""
    if settings.loop_lag_threshold <= 0:
        return None
    watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=settings.loop_lag_threshold)
    watchdog.start()
    return watchdog


async def _open_sessions(settings: Settings, worker: AsyncTaskWorker) -> Sessions | None:
    if settings.api_token is None:
        return None
    return await Sessions.open(settings.api_token, settings.session_ttl, worker.writer)


def all_routes() -> list[BaseRoute]:
    """Every route; the router tries them in order, so the hot ones come early: the task
    routes (the bulk and batch paths before /tasks/{task_id}), then the probes."""
    return [
        *bulk.routes,
        *batch.routes,
        *tasks.routes,
        *health.routes,
        *event_routes.routes,
        *task_types.routes,
        *schedules.routes,
        *metrics_routes.routes,
        *stats.routes,
        *webhooks.routes,
        *auth.routes,
        *openapi.routes,
        *cache.routes,
        *dashboard.routes,
    ]


class ServeError(Exception):
    """The server cannot start listening (the address is taken or not this machine's)."""


def bind_address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"{host}:{port}"


def hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [bind_address(settings.host, settings.port)]
    config.accesslog = None
    # Hypercorn's messages go through our logging setup once, not also its own handler.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.loglevel = settings.log_level.upper()
    # Open connections get this long to finish once the worker has stopped.
    config.graceful_timeout = min(settings.stop_timeout, 5.0)
    # Hypercorn's wait for the lifespan to end (60 s by default, then LifespanTimeoutError
    # and exit 1): if the server ends otherwise than by `drained`, that end drains.
    stop = longest_stop(settings.stop_timeout, settings.write_retry_seconds)
    config.shutdown_timeout = stop + LIFESPAN_MARGIN
    # A client silent this long mid-request is cut; event streams end themselves before it.
    config.read_timeout = settings.read_timeout  # type: ignore[assignment]  # int | None
    return config


def check_bind(config: HypercornConfig, setting: str = "LITETASK_HOST/LITETASK_PORT") -> None:
    """Bind and release the address first: Hypercorn would start the lifespan (and with it
    the worker) before it finds out that it cannot listen."""
    try:
        sockets = config.create_sockets()
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {', '.join(config.bind)} ({setting}): {exc.strerror}"
        ) from None
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        sock.close()


async def serve(settings: Settings, stop: StopRequests | None = None) -> None:
    """Serve until `stop.drain` is set (the first SIGTERM or SIGINT: app/shutdown.py), then
    drain (still answering; `stop.cut` cuts running tasks at once), stop accepting and
    return. Refuses (ConfigError) to serve off loopback without a token unless opted out.
    If the service had to stop itself (its database writer died), raise why once drained
    (WriterFailedError): `litetask serve` then exits 1, so a supervisor restarts it."""
    exposed = exposure_problem(settings.api_token, settings.host, settings.insecure_no_auth)
    if exposed is not None:
        raise ConfigError(exposed)
    warn_if_open(settings.api_token, settings.host, settings.insecure_no_auth)
    config = hypercorn_config(settings)
    check_bind(config)
    if settings.metrics_port is not None:
        metrics_bind = bind_address(settings.metrics_host, settings.metrics_port)
        check_bind(HypercornConfig.from_mapping(bind=[metrics_bind]), METRICS_SETTINGS)
    stop = stop if stop is not None else StopRequests()
    drained = asyncio.Event()
    # Hypercorn's typing
    app: Any = create_app(settings, draining=stop.drain, drained=drained, cut=stop.cut)
    try:
        # HTTP answers while the worker drains (liveness 200, readiness 503), closes after.
        await hypercorn_serve(app, config, shutdown_trigger=drained.wait)
    except LifespanFailureError:
        startup_error = getattr(app.state, "startup_error", None)
        if startup_error is not None:
            raise startup_error from None  # one line from the CLI, not a traceback
        raise
    failure: WriterFailedError | None = getattr(app.state, "failure", None)
    if failure is not None:
        raise failure
    logger.info("litetask stopped")
