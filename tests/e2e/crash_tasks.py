"""Task types for the crash tests, loaded by `litetask serve` through LITETASK_TASK_MODULES."""

from __future__ import annotations

import asyncio
import os
import signal

from app.worker.registry import task


@task("crash.kill")
async def kill_own_process(after: float) -> None:
    """Wait `after` seconds, then SIGKILL the process running it (a poison task)."""
    await asyncio.sleep(after)
    os.kill(os.getpid(), signal.SIGKILL)


@task("crash.work")
async def work(seconds: float) -> str:
    """An ordinary task that takes `seconds`."""
    await asyncio.sleep(seconds)
    return "done"
