"""Task types for the fault-injection test (loaded through task_modules, as users do).

Each run appends `start`/`end` lines to the journal named by LITETASK_CHAOS_JOURNAL (one
O_APPEND write per line, so lines from several processes never interleave), so the test can
check from outside that no task ever ran two attempts at once.
"""

from __future__ import annotations

import asyncio
import os
import time

from app.worker.registry import task


def note(event: str, n: int) -> None:
    """One journal line: what happened, to which task (its `n`), in which process, when."""
    line = f"{event} {n} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(os.environ["LITETASK_CHAOS_JOURNAL"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)  # a few bytes: not worth a thread
    finally:
        os.close(fd)


@task("chaos.work")
async def work(n: int, seconds: float) -> int:
    note("start", n)
    await asyncio.sleep(seconds)
    note("end", n)
    return n


@task("chaos.stubborn")
async def stubborn(n: int, seconds: float) -> int:
    """Swallows cancellation and carries on for far longer than any stop timeout, as
    careless code does."""
    note("start", n)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        await asyncio.sleep(60)
    note("end", n)
    return n


@task("chaos.flaky", max_attempts=3)
async def flaky(n: int) -> None:
    note("start", n)
    note("end", n)
    raise RuntimeError(f"flaky {n} fails every time")
