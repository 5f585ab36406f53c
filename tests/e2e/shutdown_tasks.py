"""Task types that misbehave at shutdown, loaded by `litetask serve` through
LITETASK_TASK_MODULES in tests/e2e/test_shutdown.py (never in production)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from app.worker.registry import task

RAISED = {
    "SystemExit": SystemExit(3),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "GeneratorExit": GeneratorExit(),
}


@task("shutdown.stubborn")
async def stubborn(seconds: float) -> str:
    """Sleep `seconds`, swallowing every cancellation on the way (the fault under test)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.sleep(left)
        except asyncio.CancelledError:  # swallowed: the fault under test
            continue
    return "stubborn"


@task("shutdown.raise")
async def raise_base(kind: str) -> None:
    """Raise the BaseException named `kind` (SystemExit, KeyboardInterrupt, GeneratorExit)."""
    raise RAISED[kind]


@task("shutdown.raise_aside")
async def raise_aside(kind: str) -> str:
    """Start a helper task of its own that raises the BaseException named `kind` (asyncio
    lets SystemExit and KeyboardInterrupt out of any task, stopping the loop)."""
    asyncio.get_running_loop().create_task(raise_base(kind))
    return "started"


@task("shutdown.block_loop")
async def block_loop(flag: str, seconds: float) -> str:
    """The first run (no `flag` file yet) blocks the event loop for `seconds`, as a task
    calling time.sleep would; later runs return at once."""
    marker = Path(flag)
    if not marker.exists():  # noqa: ASYNC240 - a tiny local check in a test task
        marker.touch()  # noqa: ASYNC240
        time.sleep(seconds)  # noqa: ASYNC251 - the fault under test
    return "unblocked"


@task("shutdown.gated")
async def gated(gate: str, finished: str) -> str:
    """Wait until the file `gate` exists, then create the file `finished` and return."""
    while not Path(gate).exists():  # noqa: ASYNC110, ASYNC240 - a test task polling a file
        await asyncio.sleep(0.01)
    Path(finished).touch()  # noqa: ASYNC240
    return "opened"
