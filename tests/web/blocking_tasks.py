"""A task type that blocks the event loop, as a careless task would (loaded through
task_modules, as users do)."""

from __future__ import annotations

import asyncio
import time

from app.worker.registry import task


@task("test.block_loop")
async def block_loop(seconds: float) -> float:
    time.sleep(seconds)  # noqa: ASYNC251  (the fault under test)
    return seconds


@task("test.busy_loop")
async def busy_loop(seconds: float, slice_seconds: float) -> float:
    """Holds the loop `slice_seconds` at a time, letting it turn in between, for `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(slice_seconds)  # noqa: ASYNC251  (the fault under test)
        await asyncio.sleep(0)
    return seconds
