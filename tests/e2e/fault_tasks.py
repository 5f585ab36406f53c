"""Task types that inject faults into the `litetask serve` process running them (loaded with
LITETASK_TASK_MODULES by the process-level tests; never in production)."""

from __future__ import annotations

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
