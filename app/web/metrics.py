"""GET /metrics: the service's Prometheus metrics (text exposition format), behind the API token
like every API route. With LITETASK_METRICS_PORT set they are also served, alone and without
a token, on LITETASK_METRICS_HOST (loopback by default): see docs/operations.md for when
that trade is worth it.

A scrape reads the present from the database (counts by status over the status index, the
active tasks by type, the oldest due pending task) under a short deadline; if the database
does not answer, the scrape still answers with everything else.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.access import is_loopback
from app.clock import now_us
from app.config import LOOPBACK_NAMES, ConfigError, Settings
from app.errors import TaskError
from app.events.manager import EventManager
from app.metrics import US, ActiveCount, LoopLag, ServiceMetrics, Snapshot
from app.watchdog import LoopWatchdog
from app.web.streams import StreamLimits
from app.worker.core import AsyncTaskWorker
from app.worker.store import TaskStore

logger = logging.getLogger(__name__)
READ_TIMEOUT = 2.0
DatabaseReading = tuple[dict[str, int] | None, Sequence[ActiveCount] | None, float | None]


@dataclass(frozen=True, slots=True)
class MetricsExporter:
    """Reads the present from the service's parts and renders the registry."""

    metrics: ServiceMetrics
    worker: AsyncTaskWorker
    events: EventManager
    streams: StreamLimits
    watchdog: LoopWatchdog | None

    async def render(self) -> bytes:
        snapshot = await self._snapshot()
        self.metrics.live.snapshot = snapshot  # rendered at once: no await in between
        return generate_latest(self.metrics.registry)

    async def response(self) -> Response:
        return Response(await self.render(), media_type=CONTENT_TYPE_LATEST)

    async def _snapshot(self) -> Snapshot:
        tasks, active, oldest = await self._read_database()
        pool = self.worker.pool
        watchdog = self.watchdog
        return Snapshot(
            tasks=tasks,
            active=active,
            oldest_pending_seconds=oldest,
            workers_busy=pool.active_count if pool else 0,
            workers_max=pool.worker_count if pool else 0,
            outcomes_waiting=pool.outcomes.refused()[0] if pool else 0,
            sse_clients=self.streams.open_streams,
            subscribers_dropped=self.events.dropped,
            loop=None if watchdog is None else LoopLag(watchdog.latest_lag, watchdog.episodes),
        )

    async def _read_database(self) -> DatabaseReading:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                store = TaskStore(self.worker.engines.reader)
                counts, active, due = await asyncio.gather(
                    store.counts(), store.active_counts(), store.oldest_due()
                )
        except (TimeoutError, SQLAlchemyError, OSError, TaskError) as exc:
            logger.warning("metrics: the task counts could not be read (%r)", exc)
            return None, None, None
        oldest = 0.0 if due is None else max(0, now_us() - due) / US
        return counts, active, oldest


async def metrics(request: Request) -> Response:
    exporter: MetricsExporter = request.state.metrics
    return await exporter.response()


routes: list[BaseRoute] = [Route("/metrics", metrics, methods=["GET"])]


def metrics_only_app(exporter: MetricsExporter, host: str) -> Starlette:
    """/metrics and nothing else, for the metrics port; Host names checked as the API's are
    on loopback (so a web page cannot read it through DNS rebinding)."""

    async def scrape(_request: Request) -> Response:
        return await exporter.response()

    hosts = list(LOOPBACK_NAMES) if is_loopback(host) else ["*"]
    return Starlette(
        routes=[Route("/metrics", scrape, methods=["GET"])],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)],
    )


class MetricsServer:
    """Serves `metrics_only_app` on LITETASK_METRICS_HOST:LITETASK_METRICS_PORT beside the
    API, in the same event loop; `start` binds (ConfigError when it cannot), `stop` closes."""

    def __init__(self, exporter: MetricsExporter, settings: Settings) -> None:
        assert settings.metrics_port is not None
        self.host, self.port = settings.metrics_host, settings.metrics_port
        self.app = metrics_only_app(exporter, self.host)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and listen now (connections wait in the backlog until Hypercorn accepts)."""
        sock = await self._listen()
        config = HypercornConfig()
        config.bind = [f"fd://{sock.detach()}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = 1.0
        if not is_loopback(self.host):
            logger.warning(
                "LITETASK_METRICS_HOST=%s: metrics are served without authentication to "
                "whoever can reach port %s",
                self.host,
                self.port,
            )
        app: Any = self.app  # Hypercorn's own ASGI typing
        serving = hypercorn_serve(app, config, shutdown_trigger=self._wait_stop)
        self._task = asyncio.create_task(serving, name="litetask-metrics-server")

    async def _listen(self) -> socket.socket:
        host = self.host.strip("[]")
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, self.port, type=socket.SOCK_STREAM
            )
            family, *_, address = found[0]
            return socket.create_server(address[:2], family=family)
        except OSError as exc:
            raise ConfigError(
                f"LITETASK_METRICS_PORT: cannot listen on {self.host}:{self.port}: "
                f"{exc.strerror or exc}"
            ) from None

    async def _wait_stop(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None


async def start_metrics_server(
    exporter: MetricsExporter, settings: Settings
) -> Callable[[], Awaitable[None]] | None:
    """Start the metrics port when configured; returns how to stop it (None: not configured)."""
    if settings.metrics_port is None:
        return None
    server = MetricsServer(exporter, settings)
    await server.start()
    return server.stop
