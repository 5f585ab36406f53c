"""Demo task types that ship with the service, so a fresh `litetask serve --demo` has real
work to run. Loaded only when asked for (--demo, LITETASK_DEMO=1); name your own modules in
LITETASK_TASK_MODULES.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.worker.registry import task

ProgressCallback = Callable[[float], None]
MAX_SLEEP_SECONDS = 3600.0


class DemoFailure(RuntimeError):
    """demo.fail always raises this."""


@task("demo.sleep")
async def sleep(
    seconds: float = 1.0, steps: int = 10, progress_callback: ProgressCallback | None = None
) -> dict[str, Any]:
    """Sleep `seconds` (at most an hour) in `steps` steps, reporting progress after each."""
    seconds = min(max(float(seconds), 0.0), MAX_SLEEP_SECONDS)
    steps = max(int(steps), 1)
    for step in range(1, steps + 1):
        await asyncio.sleep(seconds / steps)
        if progress_callback is not None:
            progress_callback(step / steps)
    return {"slept": seconds, "steps": steps}


@task("demo.add")
async def add(a: float, b: float) -> float:
    """Return a + b."""
    return a + b


@task("demo.echo")
async def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Return the arguments it was given (webhook deliveries arrive as `payload=`)."""
    return {"args": list(args), "kwargs": kwargs}


@task("demo.fail")
async def fail(message: str = "demo failure") -> None:
    """Raise DemoFailure(message): shows retries, per-attempt errors and the failed state."""
    raise DemoFailure(message)
