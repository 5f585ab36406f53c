"""Task types of the task API tests over HTTP (loaded through task_modules, as users do):
options named like parameters, a plain `def`, the context, Retry and Abort."""

from __future__ import annotations

import time
from typing import Any

from app import Abort, Retry, TaskContext, task


@task("taskapi.fetch")
async def fetch(url: str, timeout: float = 1.0) -> dict[str, Any]:
    """Returns what it was given: its own `timeout` is not the task's."""
    return {"url": url, "timeout": timeout}


@task("taskapi.blocking")
def blocking(seconds: float, progress_callback: Any = None) -> float:
    """A plain def that blocks its thread (never the event loop)."""
    time.sleep(seconds)
    if progress_callback is not None:
        progress_callback(1.0)
    return seconds


@task("taskapi.window")
def window(seconds: float) -> list[float]:
    """When it ran, by the clock: [start, end] (a plain def, in a thread)."""
    start = time.monotonic()
    time.sleep(seconds)
    return [start, time.monotonic()]


@task("taskapi.whoami")
async def whoami(context: TaskContext) -> dict[str, Any]:
    return {"task_id": context.task_id, "attempt": context.attempt}


@task("taskapi.snooze")
async def snooze(times: int, context: TaskContext) -> int:
    """Asks to run again `times` times (in 0.05 s), then returns its attempt number."""
    if context.attempt <= times:
        raise Retry(delay=0.05)
    return context.attempt


@task("taskapi.abort")
async def abort(reason: str) -> None:
    raise Abort(reason)
