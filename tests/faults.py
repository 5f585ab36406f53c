"""Fault injection: ways to make a real database misbehave under litetask.

Each helper injects the fault from outside, as the world would: another program holding the
write lock, a disk with no room left, a read-only database, a schema that refuses some
writes. None of them patches litetask's code. Given a PostgreSQL URL, each helper injects
the same fault with PostgreSQL's mechanisms (tests/pg_faults.py); every fault names the
`reason` the database gives for it (DatabaseUnavailableError.reason).
`kill_writer_thread` is the exception that proves the rule: it breaks the writer's own
machinery on purpose, to test what happens when the writer dies.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine, event

from app.db.writer import GroupCommitWriter, QuietOp, WriteOp
from tests import pg_faults

F = TypeVar("F", bound="Disk | Refusal")
SQLITE_MAX_PAGES = 1_073_741_823  # SQLite's default max_page_count: no cap


class Lock(Protocol):
    reason: str

    def release(self) -> None: ...


class Disk(Protocol):
    reason: str

    def fill(self) -> None: ...

    def free(self) -> None: ...

    def close(self) -> None: ...


class Refusal(Protocol):
    reason: str

    def release(self) -> None: ...

    def close(self) -> None: ...


def is_postgres(database: str | Path) -> bool:
    return str(database).startswith("postgresql")


def database_path(database: str | Path) -> Path:
    """The file of a `sqlite+aiosqlite:///...` URL (or a path, returned resolved)."""
    text = str(database)
    return Path(text.split(":///", 1)[1] if ":///" in text else text).resolve()


class HeldWriteLock(pg_faults.HeldTransaction):
    """Another connection holding SQLite's write lock (`BEGIN IMMEDIATE`), as a backup tool
    or a `sqlite3` shell in the middle of a transaction would: every other writer gets
    SQLITE_BUSY once its busy timeout runs out. `release()` rolls back and lets go."""

    reason = "SQLITE_BUSY"

    def __init__(self, database: str | Path) -> None:
        self._conn = sqlite3.connect(database_path(database), isolation_level=None)
        self._conn.execute("BEGIN IMMEDIATE")


@contextmanager
def write_lock_held(database: str | Path) -> Iterator[Lock]:
    """`with write_lock_held(db) as lock:` the write lock is taken until `lock.release()`
    or the end of the block."""
    lock: Lock
    if is_postgres(database):
        lock = pg_faults.PostgresWriteLock(str(database))
    else:
        lock = HeldWriteLock(database)
    try:
        yield lock
    finally:
        lock.release()


class PragmaFault:
    """A fault made of a per-connection SQLite pragma (`pragma()`), set on every connection
    to this file at the start of each transaction through a SQLAlchemy event on all
    engines, so it also reaches engines a test does not hold (the ones AsyncTaskWorker
    builds). `close()` removes the event; the pragma's last value stays on a connection."""

    def __init__(self, database: str | Path) -> None:
        self.path = database_path(database)
        event.listen(Engine, "begin", self._apply)

    def pragma(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        event.remove(Engine, "begin", self._apply)

    def _apply(self, conn: Connection) -> None:
        database = conn.engine.url.database
        if database and Path(database).resolve() == self.path:
            conn.exec_driver_sql(f"PRAGMA {self.pragma()}")


class DiskFull(PragmaFault):
    """The database file cannot grow: every transaction that needs a new page fails with
    SQLITE_FULL, as on a full disk, until `free()` makes room. Reads and writes that fit in
    the pages the file already has still work, as they would on a full disk. It caps
    SQLite's `max_page_count`."""

    reason = "SQLITE_FULL"

    def __init__(self, database: str | Path) -> None:
        self.max_pages = page_count(database)
        super().__init__(database)

    def pragma(self) -> str:
        return f"max_page_count = {self.max_pages}"

    def fill(self) -> None:
        """No room again: the file cannot grow past the pages it has now."""
        self.max_pages = page_count(self.path)

    def free(self) -> None:
        """Room again on the disk: the next transaction may grow the file."""
        self.max_pages = SQLITE_MAX_PAGES


class ReadOnly(PragmaFault):
    """Every write is refused with SQLITE_READONLY, as by a file the service may no longer
    write, until `release()`; reads still work. It sets SQLite's `query_only`: release it
    and let a write through before the block ends, or a connection keeps refusing."""

    refusing = True
    reason = "SQLITE_READONLY"

    def pragma(self) -> str:
        return f"query_only = {int(self.refusing)}"

    def release(self) -> None:
        self.refusing = False


def new_disk_full(database: str | Path, **options: int) -> Disk:
    """A full disk (until `free()`), for SQLite's file or PostgreSQL's database (`options`:
    PostgreSQL's `room`, see tests/pg_faults.py); `close()` removes the fault."""
    if is_postgres(database):
        return pg_faults.PostgresDiskFull(str(database), **options)
    return DiskFull(database)


@contextmanager
def disk_full(database: str | Path) -> Iterator[Disk]:
    """`with disk_full(db) as disk:` the database cannot grow until `disk.free()`."""
    with _installed(new_disk_full(database)) as fault:
        yield fault


@contextmanager
def read_only(database: str | Path) -> Iterator[Refusal]:
    """`with read_only(db) as fault:` every write is refused until `fault.release()`."""
    fault: Refusal
    if is_postgres(database):
        fault = pg_faults.PostgresReadOnly(str(database))
    else:
        fault = ReadOnly(database)
    with _installed(fault) as installed:
        yield installed


@contextmanager
def _installed(fault: F) -> Iterator[F]:
    try:
        yield fault
    finally:
        fault.close()


def page_count(database: str | Path) -> int:
    with closing(sqlite3.connect(database_path(database))) as conn:
        count: int = conn.execute("PRAGMA page_count").fetchone()[0]
        return count


def add_rejecting_trigger(
    database: str | Path,
    name: str,
    event: str,
    table: str,
    message: str,
    when: str | None = None,
) -> None:
    """A trigger that aborts every write of `event` on `table` (where `when` holds), e.g.
    `("BEFORE UPDATE OF status", "tasks", ..., when="NEW.status = 'completed'")`: such a
    write fails with SQLITE_CONSTRAINT or RAISE's P0001 (the write's own fault, not the
    database's state)."""
    if is_postgres(database):
        pg_faults.add_rejecting_trigger(str(database), name, event, table, message, when)
        return
    condition = f"WHEN {when}" if when else ""
    with closing(sqlite3.connect(database_path(database))) as conn, conn:
        conn.execute(
            f"CREATE TRIGGER {name} {event} ON {table} {condition} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def drop_trigger(database: str | Path, name: str) -> None:
    if is_postgres(database):
        pg_faults.drop_trigger(str(database), name)
        return
    with closing(sqlite3.connect(database_path(database))) as conn, conn:
        conn.execute(f"DROP TRIGGER {name}")


class ThreadDeath(BaseException):
    """Not an Exception: no write's fault, nothing the writer's transaction catches."""


class _KillThread(WriteOp[None]):
    def apply(self, conn: Connection) -> None:
        raise ThreadDeath("the writer thread was killed (fault injection)")


class _CloseConnection(QuietOp[None]):
    def apply_alone(self, raw: sqlite3.Connection) -> None:
        raw.close()


def kill_writer_thread(writer: GroupCommitWriter) -> None:
    """Fault injection into the writer itself: kill the thread its transactions run in, as
    if that thread had died (the next transaction it takes raises what no write explains).
    The writer must die loudly (fail every waiting write, turn health 503, make `litetask
    serve` exit non-zero), not hang or limp on. Call it from the event loop."""
    killed = asyncio.ensure_future(writer.submit(_KillThread()))
    killed.add_done_callback(lambda f: f.exception())  # it fails: WriterFailedError


async def close_writer_connection(writer: GroupCommitWriter) -> None:
    """Fault injection into the writer: close its SQLite connection under it (in its own
    thread, where the connection lives, between transactions), as if the handle had been
    lost."""
    await writer.run(_CloseConnection())
