"""Consistent copies of a live database, through SQLite's online backup API (no `sqlite3`
binary needed).

The copy is read in one step, so in one read transaction: a snapshot holding every commit
made before it began and none after, while the service goes on writing (in WAL mode readers
and the writer do not block each other). It is written to a private temporary file beside
the destination, checked with PRAGMA integrity_check, flushed, and only then renamed over
the destination: whoever reads PATH finds the old file or a whole, checked new one.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from app.db.files import create_new_private, sync_path
from app.errors import BackupError

# Seconds to wait for a lock another connection holds (e.g. while it recovers the WAL).
BUSY_TIMEOUT = 30.0
SIDE_FILES = ("-wal", "-shm", ".lock")


@dataclass(frozen=True, slots=True)
class BackupCopy:
    """A finished copy: where, how large, and its schema revision (None: no litetask
    schema in it)."""

    path: Path
    size: int
    revision: str | None


def back_up(source: Path, destination: Path) -> BackupCopy:
    """Copy the database at `source` to `destination` (0600, replaced atomically); a
    BackupError says why not, and leaves `destination` as it was."""
    _check_paths(source, destination)
    partial = destination.with_name(f".{destination.name}.partial-{secrets.token_hex(4)}")
    create_new_private(partial)
    try:
        revision = _copy(source, partial)
        sync_path(partial)
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    sync_path(destination.parent)
    return BackupCopy(destination, destination.stat().st_size, revision)


def open_existing(path: Path) -> sqlite3.Connection:
    """A connection to the database file at `path`, which it never creates."""
    try:
        return sqlite3.connect(
            f"file:{quote(str(path))}?mode=rw", uri=True, timeout=BUSY_TIMEOUT, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the database {path}: {exc}") from None


def schema_revision(conn: sqlite3.Connection) -> str | None:
    """The Alembic revision recorded in the database; None when it has none."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def _copy(source: Path, target: Path) -> str | None:
    with (
        closing(open_existing(source)) as origin,
        closing(sqlite3.connect(target, isolation_level=None)) as copy,
    ):
        try:
            origin.backup(copy)
            # A standalone file: nothing of it lives in a -wal that could be left behind.
            copy.execute("PRAGMA journal_mode = DELETE")
            problems = [str(row[0]) for row in copy.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot copy {source}: {exc}") from None
        if problems != ["ok"]:
            found = "; ".join(problems[:3])
            raise BackupError(f"the copy of {source} fails PRAGMA integrity_check: {found}")
        return schema_revision(copy)


def _check_paths(source: Path, destination: Path) -> None:
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if destination.is_dir():
        raise BackupError(f"{destination} is a directory: name the backup file in it")
    if not destination.parent.is_dir():
        raise BackupError(f"the directory {destination.parent} does not exist")
    resolved = destination.resolve()
    own = {source.resolve()} | {source.with_name(source.name + s).resolve() for s in SIDE_FILES}
    if resolved in own:
        raise BackupError(f"{destination} is the database itself (or one of its files)")
