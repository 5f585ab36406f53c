"""Task types for fault tests, loaded with LITETASK_TASK_MODULES by the HTTP and process-level
tests (never in production): one injects a fault into the process running it, one returns a
result only once the test has made the database misbehave."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from app.db.writer import GroupCommitWriter
from app.worker.registry import task
from tests.faults import kill_writer_thread


@task("faults.break_writer")
async def break_writer(flag: str) -> str:
    """Fault injection: the first run (no `flag` file yet) kills the database writer of the
    process it runs in, found through the garbage collector since nothing hands a task its
    writer; later runs just complete. So the process must die and its successor finish it."""
    marker = Path(flag)
    if not marker.exists():  # noqa: ASYNC240 - a tiny local check in a test task
        marker.touch()  # noqa: ASYNC240
        for writer in [o for o in gc.get_objects() if isinstance(o, GroupCommitWriter)]:
            kill_writer_thread(writer)
    return "survived"


@task("faults.big_result")
async def big_result(gate: str, size: int) -> bytes:
    """Wait until the file `gate` exists, then return `size` bytes: a result that needs new
    pages in the database, so a full disk refuses it."""
    while not Path(gate).exists():  # noqa: ASYNC110, ASYNC240 - a test task polling a file
        await asyncio.sleep(0.01)
    return b"x" * size
