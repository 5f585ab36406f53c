"""Ending the loops a component started: cancel them all, then wait for each to finish.

Awaiting a cancelled task inside `suppress(CancelledError)` also swallows a cancellation of
the caller itself (a stop that is cancelled would go on as if it was not); this keeps it.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until each has ended. A task that ended with an error other
    than its cancellation raises it here, once all have ended; a cancellation of the caller
    raises CancelledError as usual."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
