"""Task types the cache tests load into a real app through task_modules, as users do."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.worker.registry import task


def _note_start(folder: Path) -> None:
    with (folder / "started").open("a") as notes:
        notes.write(".")


@task("cachetest.gated")
async def gated(directory: str) -> str:
    """Notes its start in <directory>/started, waits until <directory>/open exists, and
    returns a value no other run returns (so a test can tell whose result it got)."""
    folder = Path(directory)
    await asyncio.to_thread(_note_start, folder)
    while True:
        if await asyncio.to_thread((folder / "open").exists):
            return uuid.uuid4().hex
        await asyncio.sleep(0.01)


def runs_started(directory: Path) -> int:
    started = directory / "started"
    return len(started.read_text()) if started.exists() else 0


@task("cachetest.odd_values")
async def odd_values() -> dict[str, Any]:
    """A result holding every value plain JSON has no literal for."""
    return {
        "inf": math.inf,
        "minus_inf": -math.inf,
        "nan": math.nan,
        "set": {3},
        "tuple": (1, 2),
        "bytes": b"\x00\xff",
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "amount": Decimal("1.50"),
        "id": uuid.UUID(int=7),
    }
