"""Typed access to what the lifespan put in the request state."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from starlette.requests import HTTPConnection, Request

from app.config import Settings
from app.worker.core import AsyncTaskWorker

if TYPE_CHECKING:
    from asyncio import Event

    from app.events.manager import EventManager
    from app.watchdog import LoopWatchdog
    from app.web.health import HealthMonitor
    from app.web.login_throttle import LoginThrottle
    from app.web.metrics import MetricsExporter
    from app.web.sessions import Sessions
    from app.web.streams import StreamLimits
    from app.worker.throughput import Throughput


class AppState(TypedDict):
    """The lifespan state: one worker, the settings it was built from, the event manager,
    an Event set when draining starts, the health monitor, the loop watchdog (None when
    turned off), the browser sessions (None without an API token), the failed-login
    throttle, the event-stream limits, the metrics exporter and the throughput counts."""

    worker: AsyncTaskWorker
    settings: Settings
    events: EventManager
    draining: Event
    health: HealthMonitor
    watchdog: LoopWatchdog | None
    sessions: Sessions | None
    login_throttle: LoginThrottle
    streams: StreamLimits
    metrics: MetricsExporter
    throughput: Throughput


def worker_of(request: Request) -> AsyncTaskWorker:
    worker: AsyncTaskWorker = request.state.worker
    return worker


def settings_of(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.state.settings
    return settings


def sessions_of(conn: HTTPConnection) -> Sessions | None:
    sessions: Sessions | None = conn.state.sessions
    return sessions


def throttle_of(conn: HTTPConnection) -> LoginThrottle:
    throttle: LoginThrottle = conn.state.login_throttle
    return throttle


def throughput_of(request: Request) -> Throughput:
    throughput: Throughput = request.state.throughput
    return throughput


def is_draining(request: Request) -> bool:
    draining: Event = request.state.draining
    return draining.is_set()
