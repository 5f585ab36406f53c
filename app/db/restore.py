"""Putting a backup back (`litetask restore PATH`), only while no service owns the database.

Order, so that a failure at any step leaves the database as it was:
1. take the database's process lock for the whole restore (a running service holds it:
   refused), then run OWNERSHIP_CHECKS on the current database;
2. copy the backup beside the database with the backup API: integrity-checked, private;
3. refuse a copy without a litetask schema or at a revision this version does not know;
   bring an older one to the current schema, then run AFTER_RESTORE on it;
4. fold the current database's WAL into it and keep it as `<db>.before-restore-<UTC time>`
   (a hard link: no copy, no moment without a database), move its -wal/-shm out of the way
   (a WAL left beside the new file would be replayed into it);
5. rename the copy over the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine

from app.db.backup import back_up, open_existing
from app.db.files import sync_path
from app.db.lock import ProcessLock
from app.db.migrate import check_known, upgrade_sync
from app.db.owner import refuse_live_owner
from app.db.service_state import end_sessions_after_restore, new_epoch_after_restore
from app.errors import BackupError

logger = logging.getLogger(__name__)

# A step run on a database in one transaction (see OWNERSHIP_CHECKS and AFTER_RESTORE).
Step = Callable[[Connection], None]

# Proofs, beyond the process lock held through the restore, that no service owns the
# database: run on the current database (when there is one; it may be at an older schema)
# before anything else, each raises DatabaseInUseError: the owner row with a heartbeat (one
# owner process per SQLite file), which holds even when the lock file was deleted.
OWNERSHIP_CHECKS: tuple[Step, ...] = (refuse_live_owner,)

# Steps run on the restored copy, at the current schema, in one transaction, before it
# replaces the database: whatever must not go back in time with the backup (sessions ended
# since it was taken; the event log's epoch, so resuming SSE clients learn that event ids
# start over).
AFTER_RESTORE: tuple[Step, ...] = (end_sessions_after_restore, new_epoch_after_restore)


@dataclass(frozen=True, slots=True)
class Restored:
    database: Path
    revision: str  # the backup's schema revision (the database is now at head)
    replaced: Path | None  # where the database it replaced is kept; None: there was none


async def restore(backup: Path, database: Path) -> Restored:
    """Replace `database` by `backup` (see the module's docstring); DatabaseInUseError while
    a service owns it, BackupError for a backup that cannot be restored."""
    lock = ProcessLock(database)
    await lock.acquire()
    try:
        return await asyncio.to_thread(_restore_locked, backup, database)
    finally:
        lock.release()


def _restore_locked(backup: Path, database: Path) -> Restored:
    if database.exists():
        _apply(database, OWNERSHIP_CHECKS)
    if not backup.is_file():
        raise BackupError(f"there is no backup at {backup}")
    staged = database.with_name(f".{database.name}.restoring")
    copy = back_up(backup, staged)
    try:
        if copy.revision is None:
            raise BackupError(f"{backup} is not a litetask database (it has no schema revision)")
        check_known(copy.revision, str(backup))
        _prepare(staged)
        replaced = _keep_current(database)
        os.replace(staged, database)
    finally:
        staged.unlink(missing_ok=True)
    sync_path(database.parent)
    return Restored(database, copy.revision, replaced)


def _prepare(staged: Path) -> None:
    """The staged copy at the current schema, with the AFTER_RESTORE steps applied. (No
    pre-migration copy: the backup itself is one.)"""
    engine = create_engine(f"sqlite+pysqlite:///{staged}")
    try:
        upgrade_sync(engine, back_up_first=False)
    finally:
        engine.dispose()
    _apply(staged, AFTER_RESTORE)


def _apply(database: Path, steps: tuple[Step, ...]) -> None:
    """Run `steps` on the database at `database`, in one transaction."""
    if not steps:
        return
    engine = create_engine(f"sqlite+pysqlite:///{database}")
    try:
        with engine.begin() as conn:
            for step in steps:
                step(conn)
    finally:
        engine.dispose()


def _keep_current(database: Path) -> Path | None:
    """Keep the database about to be replaced, WAL included; clear its -wal and -shm."""
    wal, shm = (database.with_name(database.name + suffix) for suffix in ("-wal", "-shm"))
    if not database.exists():
        wal.unlink(missing_ok=True)
        shm.unlink(missing_ok=True)
        return None
    _checkpoint(database)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = database.with_name(f"{database.name}.before-restore-{stamp}")
    try:
        os.link(database, kept)
    except FileExistsError:
        raise BackupError(f"{kept} exists already; try again in a second") from None
    if wal.exists() and wal.stat().st_size > 0:  # not folded in: it goes with the kept copy
        os.replace(wal, kept.with_name(kept.name + "-wal"))
    wal.unlink(missing_ok=True)
    shm.unlink(missing_ok=True)
    return kept


def _checkpoint(database: Path) -> None:
    """Fold the WAL into the database file. A database too damaged for that keeps its WAL
    beside the kept copy instead (see _keep_current)."""
    with closing(open_existing(database)) as conn:
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            logger.warning("cannot fold the WAL of %s into it: %s", database, exc)
