"""Keeping the database file bounded: pages freed by pruning go back to the filesystem, and
the WAL is truncated when the writer is idle.

- auto_vacuum=INCREMENTAL lets `PRAGMA incremental_vacuum` hand free pages back (with the
  default, NONE, a file never shrinks). A new database gets it before its first page
  (app/db/engine.py); an older one is converted once, right after migrating
  (`ensure_incremental_vacuum`): a VACUUM, which rewrites the whole file.
- `GiveBackSpace`: a bounded number of free pages per transaction, so it never holds the
  write lock for long; `give_back_space` repeats it until none is left.
- `Checkpoint`: `PRAGMA wal_checkpoint(TRUNCATE)` between transactions when nothing waits
  (a QuietOp), waiting only briefly for readers: the WAL otherwise keeps the size of its
  largest burst of writes for good.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from sqlalchemy import Connection

from app.db.writer import GroupCommitWriter, QuietOp, WriteOp

logger = logging.getLogger(__name__)
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
PAGES_PER_TRANSACTION = 1024  # 4 MiB of default 4 KiB pages
CHECKPOINT_BUSY_SECONDS = 0.1


def ensure_incremental_vacuum(raw: sqlite3.Connection, where: Path | str) -> bool:
    """Put the database in auto_vacuum=INCREMENTAL if it is not yet; True when that took a
    VACUUM. Outside any transaction, with no other connection open. A database without
    tables takes the setting at once; any other needs a VACUUM, which copies every page: it
    takes about as long as copying the file and needs as much free disk again, once."""
    if _auto_vacuum(raw) == INCREMENTAL:
        return False
    raw.execute("PRAGMA auto_vacuum = INCREMENTAL")
    if _auto_vacuum(raw) == INCREMENTAL:
        return False
    logger.warning(
        "converting %s to auto_vacuum=INCREMENTAL (once: a VACUUM rewrites the whole file, "
        "which takes about as long as copying it)",
        where,
    )
    raw.execute("VACUUM")
    return True


def _auto_vacuum(raw: sqlite3.Connection) -> int:
    return int(raw.execute("PRAGMA auto_vacuum").fetchone()[0])


class GiveBackSpace(WriteOp[int]):
    """Hand up to `pages` free pages back to the filesystem (the file shrinks); the outcome is
    how many went."""

    def __init__(self, pages: int = PAGES_PER_TRANSACTION) -> None:
        super().__init__()
        self.pages = pages

    def apply(self, conn: Connection) -> int:
        raw = conn.connection.driver_connection
        if not isinstance(raw, sqlite3.Connection):
            return 0  # PostgreSQL: autovacuum keeps the space, nothing to hand back here
        before = _free_pages(raw)
        # incremental_vacuum(1) frees exactly one page per statement, however the driver
        # steps it (Python's sqlite3 steps a statement that returns no columns only once);
        # closing the cursor resets the statement, or COMMIT would find it in progress.
        for _ in range(min(before, self.pages)):
            raw.execute("PRAGMA incremental_vacuum(1)").close()
        return before - _free_pages(raw)


def _free_pages(raw: sqlite3.Connection) -> int:
    return int(raw.execute("PRAGMA freelist_count").fetchone()[0])


async def give_back_space(writer: GroupCommitWriter, pages: int = PAGES_PER_TRANSACTION) -> int:
    """GiveBackSpace until no free page is left (or the database cannot give any back: not
    in INCREMENTAL mode); returns the pages given back."""
    total = 0
    while True:
        freed = await writer.run(GiveBackSpace(pages))
        total += freed
        if freed < pages:
            return total
        await asyncio.sleep(0)  # let other writes in between


class Checkpoint(QuietOp[bool]):
    """`PRAGMA wal_checkpoint(TRUNCATE)`: copy the WAL into the database and truncate it to
    zero bytes. True when done; False when a reader still needed the WAL after
    `busy_seconds` (it is tried again next time); None when the writer was not idle."""

    def __init__(self, busy_seconds: float = CHECKPOINT_BUSY_SECONDS) -> None:
        super().__init__()
        self.busy_ms = round(busy_seconds * 1000)

    def apply_alone(self, raw: sqlite3.Connection) -> bool:
        (previous,) = raw.execute("PRAGMA busy_timeout").fetchone()
        raw.execute(f"PRAGMA busy_timeout = {self.busy_ms}")
        try:
            busy, _log, _done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(previous)}")
        return bool(busy == 0)
