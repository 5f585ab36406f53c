"""Task types for tests/e2e/test_move_to_postgres.py, loaded by `litetask serve` through
LITETASK_TASK_MODULES (never in production)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from app.worker.registry import task


@task("move.gate")
async def gate(path: str) -> str:
    """Wait until the file at `path` exists: a task the test keeps running (or queued)
    for as long as it likes, then lets finish."""
    while not await asyncio.to_thread(Path(path).exists):  # noqa: ASYNC110 - polls a file
        await asyncio.sleep(0.05)
    return "opened"


@task("move.hourly", every=3600)
async def hourly(scheduled_at: datetime) -> str:
    """A periodic task type, so the database holds a schedule."""
    return scheduled_at.isoformat()
