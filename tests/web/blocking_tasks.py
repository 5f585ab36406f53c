"""A task type that blocks the event loop, as a careless task would (loaded through
task_modules, as users do)."""

from __future__ import annotations

import time

from app.worker.registry import task


@task("test.block_loop")
async def block_loop(seconds: float) -> float:
    time.sleep(seconds)  # noqa: ASYNC251  (the fault under test)
    return seconds
