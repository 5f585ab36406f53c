"""A task type the watch tests drive step by step (loaded through task_modules, as users do):
each step waits for a file the test creates, so what the watcher sees never depends on how
fast a loaded machine starts it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from app.worker.registry import task


async def _opened(gate: str) -> None:
    while not Path(gate).exists():  # noqa: ASYNC110, ASYNC240 - a test task polling a file
        await asyncio.sleep(0.02)


@task("watch.halfway")
async def halfway(start: str, finish: str, progress_callback: Any = None) -> str:
    """Report 50% once the file `start` exists, return once the file `finish` exists."""
    await _opened(start)
    progress_callback(0.5)
    await _opened(finish)
    return "done"
