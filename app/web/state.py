"""Typed access to what the lifespan put in the request state."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from starlette.requests import Request

from app.config import Settings
from app.worker.core import AsyncTaskWorker

if TYPE_CHECKING:
    from asyncio import Event

    from app.events.manager import EventManager
    from app.web.health import HealthMonitor
    from app.web.streams import StreamLimits


class AppState(TypedDict):
    """The lifespan state: one worker, the settings it was built from, the event manager,
    an Event set when draining starts, the health monitor and the event-stream limits."""

    worker: AsyncTaskWorker
    settings: Settings
    events: EventManager
    draining: Event
    health: HealthMonitor
    streams: StreamLimits


def worker_of(request: Request) -> AsyncTaskWorker:
    worker: AsyncTaskWorker = request.state.worker
    return worker


def settings_of(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def is_draining(request: Request) -> bool:
    draining: Event = request.state.draining
    return draining.is_set()
