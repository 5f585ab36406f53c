"""One owner per database, proved in the database itself: an `owners` row with a heartbeat.

The lock file (app/db/lock.py) can be deleted under a live process; this row cannot be
missed, because it is checked and taken in the recovery transaction, before any task is
touched. A row is alive while its process is: on this host the kernel says so (pid plus
start time, so a reused pid is not mistaken for the owner); for a row written elsewhere, or
by this very process, the heartbeat's expiry decides. A dead owner's row is taken over.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, inspect, select, update

from app.clock import now_us, seconds_to_us
from app.db.tables import owners
from app.db.writer import WriteOp
from app.errors import DatabaseInUseError

# A heartbeat keeps the row alive for this many intervals, so a few late beats are no loss.
LEASE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class Owner:
    """This process as an owner of the database."""

    boot_id: str
    host: str
    pid: int
    process: str
    heartbeat_seconds: float

    @classmethod
    def current(cls, boot_id: str, heartbeat_seconds: float) -> Owner:
        pid = os.getpid()
        return cls(boot_id, socket.gethostname(), pid, process_token(pid), heartbeat_seconds)

    def expires_at(self, now: int) -> int:
        return now + seconds_to_us(self.heartbeat_seconds * LEASE_INTERVALS)


def process_token(pid: int) -> str:
    """ "<kernel boot id>:<start time>" of a live process on Linux, "" when unknown."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Fields after the command's ")": state (3rd field) first, start time (22nd) 20th.
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):  # dead, not yet reaped
        return ""
    return f"{boot}:{fields[19]}"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _local_verdict(row: Any, me: Owner) -> bool | None:
    """Whether the row's process lives, when this host can tell; None when it cannot."""
    if row.host != me.host:
        return None
    if row.process and me.process:
        if row.process == me.process:
            return None  # another worker in this very process: its heartbeat tells
        return bool(process_token(row.pid) == row.process)
    if row.pid == me.pid:
        return None
    return _pid_exists(row.pid)


def is_alive(row: Any, me: Owner, now: int) -> bool:
    verdict = _local_verdict(row, me)
    return bool(row.expires_at > now) if verdict is None else verdict


def take_ownership(conn: Connection, me: Owner, database: str) -> None:
    """Inside the caller's transaction: refuse (DatabaseInUseError) while another owner
    lives; otherwise drop the rows of dead owners and insert ours."""
    now = now_us()
    for row in conn.execute(select(owners)).all():
        if row.boot_id != me.boot_id and is_alive(row, me, now):
            beat = (now - row.heartbeat_at) / 1_000_000
            raise DatabaseInUseError(
                f"another litetask process (pid {row.pid} on {row.host}, last heartbeat "
                f"{beat:.0f} s ago) is already using {database}; stop it first or use "
                "another database"
            )
    conn.execute(delete(owners))
    insert_owner(conn, me, now)


def insert_owner(conn: Connection, me: Owner, now: int, events_seen: Any = None) -> None:
    """Add `me`'s row, its heartbeat fresh as of `now` (and `events_seen`, a value or a
    scalar subquery, on PostgreSQL)."""
    conn.execute(
        owners.insert().values(
            boot_id=me.boot_id,
            host=me.host,
            pid=me.pid,
            process=me.process,
            started_at=now,
            heartbeat_at=now,
            expires_at=me.expires_at(now),
            events_seen=events_seen,
        )
    )


def refuse_live_owner(conn: Connection) -> None:
    """DatabaseInUseError while a live process owns the database (a restore's check; the
    owners table may not exist yet in a database at an older schema)."""
    if not inspect(conn).has_table(owners.name):
        return
    me = Owner.current(boot_id="", heartbeat_seconds=0)
    now = now_us()
    for row in conn.execute(select(owners)).all():
        if is_alive(row, me, now):
            raise DatabaseInUseError(
                f"a litetask process (pid {row.pid} on {row.host}) owns this database; "
                "stop it first"
            )


class Heartbeat(WriteOp[bool]):
    """Keep our owner row alive, noting how far our log follower has read (`events_seen`,
    PostgreSQL; None leaves it); False when the row is gone (another process took over)."""

    def __init__(self, me: Owner, events_seen: int | None = None) -> None:
        super().__init__()
        self.me, self.events_seen = me, events_seen

    def apply(self, conn: Connection) -> bool:
        now = now_us()
        values: dict[str, int] = {"heartbeat_at": now, "expires_at": self.me.expires_at(now)}
        if self.events_seen is not None:
            values["events_seen"] = self.events_seen
        result = conn.execute(
            update(owners).where(owners.c.boot_id == self.me.boot_id).values(**values)
        )
        return result.rowcount == 1


class ReleaseOwnership(WriteOp[None]):
    """At a clean stop: remove our row, so the next start need not judge whether we live."""

    def __init__(self, boot_id: str) -> None:
        super().__init__()
        self.boot_id = boot_id

    def apply(self, conn: Connection) -> None:
        conn.execute(delete(owners).where(owners.c.boot_id == self.boot_id))
