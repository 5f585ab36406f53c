"""create_app(settings) -> Starlette, and serve(settings): one Hypercorn process.

The lifespan imports the task modules, starts the metrics port (when configured) and the
worker (lock, migrate, recover, pool) and yields the state handlers read
(`request.state.worker`, `.settings`, `.events`, `.draining`, `.metrics`...). Draining (SIGTERM,
or a dead writer) ends event streams and stops the worker within settings.stop_timeout while
HTTP still answers; the server closes after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
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
from app.errors import TaskError, WriterFailedError
from app.events.log import TaskEvent
from app.events.manager import EventManager
from app.metrics import ServiceMetrics, TaskMetrics
from app.watchdog import LoopWatchdog
from app.web import auth, cache, dashboard, health, openapi, task_types, tasks, webhooks
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
from app.worker.pruner import Pruner
from app.worker.registry import default_registry

logger = logging.getLogger(__name__)
METRICS_SETTINGS = "LITETASK_METRICS_HOST/LITETASK_METRICS_PORT"


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


def build_worker(settings: Settings, events: EventManager, metrics: TaskMetrics) -> AsyncTaskWorker:
    return AsyncTaskWorker(
        settings.database_url,
        max_workers=settings.max_workers,
        task_timeout=settings.task_timeout,
        registry=default_registry,
        max_attempts=settings.max_attempts,
        retry_backoff=settings.retry_backoff,
        max_interruptions=settings.max_interruptions,
        reconcile_interval=settings.reconcile_interval,
        heartbeat_interval=settings.heartbeat_interval,
        event_sink=_both(events, metrics),
        cache=settings.cache(),
        busy_timeout=settings.busy_timeout,
        write_retry_seconds=settings.write_retry_seconds,
        commit_observer=metrics.observe_commit,
    )


def _both(events: EventManager, metrics: TaskMetrics) -> Callable[[list[TaskEvent]], None]:
    """The worker's event sink: subscribers first, then the metrics (neither raises)."""

    def publish(batch: list[TaskEvent]) -> None:
        events.publish(batch)
        metrics.observe_events(batch)

    return publish


def create_app(
    settings: Settings,
    *,
    draining: asyncio.Event | None = None,
    drained: asyncio.Event | None = None,
) -> Starlette:
    """The whole service as one ASGI app. Set `draining` to start a graceful stop: readiness
    turns 503, event streams end and the worker drains while HTTP still answers (liveness
    stays 200); `drained` is set once the worker has stopped, when the server may close."""
    drain = draining if draining is not None else asyncio.Event()
    done = drained if drained is not None else asyncio.Event()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        load_task_modules(settings.modules)
        events, metrics = EventManager(), ServiceMetrics.build()
        worker = build_worker(settings, events, metrics.tasks)
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
                _serve_until_drained(app, worker, events, settings, drain, done), name="drainer"
            )
            stack.push_async_callback(_finish_draining, drain, drainer)
            yield {
                "worker": worker,
                "settings": settings,
                "events": events,
                "draining": drain,
                "health": HealthMonitor(worker, settings.health_interval),
                "watchdog": watchdog,
                "sessions": await _open_sessions(settings, worker),
                "login_throttle": LoginThrottle(),
                "streams": streams,
                "metrics": exporter,
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
    the access log (LITETASK_ACCESS_LOG) around that, so it sees every final status."""

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


async def _serve_until_drained(
    app: Starlette,
    worker: AsyncTaskWorker,
    events: EventManager,
    settings: Settings,
    drain: asyncio.Event,
    drained: asyncio.Event,
) -> None:
    """Run the side tasks (the writer guard, the pruner) until draining starts; then end the
    event streams, stop the side tasks and the worker (running tasks get
    settings.stop_timeout), and set `drained`."""
    guard = asyncio.create_task(_drain_if_writer_dies(worker, drain, app), name="writer-guard")
    pruner = asyncio.create_task(
        Pruner(worker.writer, settings.prune_policy()).run(), name="pruner"
    )
    try:
        await drain.wait()
        events.close()
    finally:
        for side in (pruner, guard):
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await side
        try:
            await worker.stop(settings.stop_timeout)
        finally:
            drained.set()


async def _finish_draining(drain: asyncio.Event, drainer: asyncio.Task[None]) -> None:
    drain.set()
    await drainer


async def _drain_if_writer_dies(
    worker: AsyncTaskWorker, drain: asyncio.Event, app: Starlette
) -> None:
    """A dead writer cannot be mended in place: note why on `app.state.failure` (serve exits
    non-zero on it, so the supervisor restarts the service) and start draining."""
    failure = await worker.writer.wait_failed()
    logger.critical("%s; stopping the service", failure)
    app.state.failure = failure
    drain.set()


def all_routes() -> list[BaseRoute]:
    return [
        *tasks.routes,
        *event_routes.routes,
        *task_types.routes,
        *health.routes,
        *metrics_routes.routes,
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
    config.graceful_timeout = min(settings.stop_timeout, 5.0)
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


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then drain (still answering), stop accepting and
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
    draining, drained = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, draining.set)
    app: Any = create_app(settings, draining=draining, drained=drained)  # Hypercorn's typing
    try:
        # HTTP answers while the worker drains (liveness 200, readiness 503), closes after.
        await hypercorn_serve(app, config, shutdown_trigger=drained.wait)
    except LifespanFailureError:
        startup_error = getattr(app.state, "startup_error", None)
        if startup_error is not None:
            raise startup_error from None  # one line from the CLI, not a traceback
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
    failure: WriterFailedError | None = getattr(app.state, "failure", None)
    if failure is not None:
        raise failure
    logger.info("litetask stopped")
