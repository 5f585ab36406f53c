"""Task types for the PostgreSQL process tests, loaded by `litetask serve` through
LITETASK_TASK_MODULES. Each run appends what it did to a file per process in
$LITETASK_TEST_EFFECTS (one short line per write: O_APPEND keeps lines whole)."""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from pathlib import Path

from app.worker.registry import task


def _note(kind: str, task_id: str) -> None:
    path = Path(os.environ["LITETASK_TEST_EFFECTS"]) / f"{os.getpid()}.log"
    with path.open("a", encoding="utf-8") as log:
        log.write(f"{kind} {task_id} {os.getpid()} {time.time():.6f}\n")


@task("pg.effect")
async def effect(task_id: str, seconds: float) -> str:
    """Note the start, work `seconds`, then note the effect (the task's one visible write)."""
    _note("start", task_id)
    await asyncio.sleep(seconds)
    _note("effect", task_id)
    return task_id


@task("pg.long")
async def long(task_id: str, seconds: float) -> str:
    """`effect`, noting a cancellation (then ending as cancelled) if one comes first."""
    _note("start", task_id)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _note("cancelled", task_id)
        raise
    _note("effect", task_id)
    return task_id


def read_notes(effects: Path) -> dict[str, list[tuple[str, int, float]]]:
    """task id -> [(kind, pid, time)], oldest first."""
    notes: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
    for log in effects.glob("*.log"):
        for line in log.read_text().splitlines():
            kind, task_id, pid, at = line.split()
            notes[task_id].append((kind, int(pid), float(at)))
    return {task_id: sorted(found, key=lambda note: note[2]) for task_id, found in notes.items()}
