"""Periodic task types loaded by `litetask serve` through LITETASK_TASK_MODULES in
tests/e2e/test_periodic_service.py and the dashboard's schedule test (never in production).

`periodic.tick` runs every second and appends its slot to the file named by
PERIODIC_RUNS_FILE (when set): one line per run, so a test reads what really ran.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path

from app.worker.registry import task

RUNS_FILE = "PERIODIC_RUNS_FILE"


def _append(path: str, line: str) -> None:
    with Path(path).open("a", encoding="utf-8") as runs:
        runs.write(line + "\n")


@task("periodic.tick", every=1, missed="all", priority=5, max_attempts=2)
async def tick(scheduled_at: datetime) -> str:
    """Note the slot it runs for."""
    path = os.environ.get(RUNS_FILE)
    if path:
        await asyncio.to_thread(_append, path, scheduled_at.isoformat())
    return scheduled_at.isoformat()


@task("periodic.report", cron="30 9 * * MON-FRI", timezone="America/New_York", timeout=60)
async def report() -> str:
    """A weekday-morning report (it never comes during a test run)."""
    return "report"
