"""create_app(settings) -> Starlette, and serve(settings): one Hypercorn process.

The lifespan imports the task modules, starts the worker (lock, migrate, recover, pool) and
yields the state handlers read (`request.state.worker`, `.settings`, `.events`, `.draining`);
on the way out it ends event streams and drains the worker within settings.stop_timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.utils import LifespanFailureError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from app.config import ConfigError, Settings
from app.errors import TaskError
from app.events.manager import EventManager
from app.events.retention import prune_periodically
from app.web import auth, cache, dashboard, health, openapi, task_types, tasks, webhooks
from app.web import events as event_routes
from app.web.auth import AuthMiddleware
from app.web.errors import EXCEPTION_HANDLERS
from app.web.health import HealthMonitor
from app.web.state import AppState
from app.worker.core import AsyncTaskWorker
from app.worker.registry import default_registry

logger = logging.getLogger(__name__)


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


def build_worker(settings: Settings, events: EventManager) -> AsyncTaskWorker:
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
        event_sink=events.publish,
        cache=settings.cache(),
    )


def create_app(settings: Settings, *, draining: asyncio.Event | None = None) -> Starlette:
    """The whole service as one ASGI app. Set `draining` to start a graceful stop: health
    turns 503 and event streams end, so the server can finish its connections."""
    drain = draining if draining is not None else asyncio.Event()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        load_task_modules(settings.task_modules)
        events = EventManager()
        worker = build_worker(settings, events)
        try:
            await worker.start()
        except TaskError as exc:  # e.g. the database is in use: serve() reports it plainly
            app.state.startup_error = exc
            raise
        closer = asyncio.create_task(_close_when_draining(drain, events))
        pruner = asyncio.create_task(
            prune_periodically(worker.writer, settings.event_retention()), name="event-pruner"
        )
        try:
            yield {
                "worker": worker,
                "settings": settings,
                "events": events,
                "draining": drain,
                "health": HealthMonitor(worker, settings.health_interval),
            }
        finally:
            drain.set()
            await closer
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
            await worker.stop(settings.stop_timeout)

    return Starlette(
        routes=all_routes(),
        middleware=[Middleware(AuthMiddleware, token=settings.api_token)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )


async def _close_when_draining(draining: asyncio.Event, events: EventManager) -> None:
    await draining.wait()
    events.close()


def all_routes() -> list[BaseRoute]:
    return [
        *tasks.routes,
        *event_routes.routes,
        *task_types.routes,
        *health.routes,
        *webhooks.routes,
        *auth.routes,
        *openapi.routes,
        *cache.routes,
        *dashboard.routes,
    ]


def hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    # Hypercorn's messages go through our logging setup once, not also its own handler.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.loglevel = settings.log_level.upper()
    config.graceful_timeout = min(settings.stop_timeout, 5.0)
    return config


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, drain and return."""
    draining = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, draining.set)
    app: Any = create_app(settings, draining=draining)  # Hypercorn's own ASGI typing
    try:
        await hypercorn_serve(app, hypercorn_config(settings), shutdown_trigger=draining.wait)
    except LifespanFailureError:
        startup_error = getattr(app.state, "startup_error", None)
        if startup_error is not None:
            raise startup_error from None  # one line from the CLI, not a traceback
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
    logger.info("litetask stopped")
