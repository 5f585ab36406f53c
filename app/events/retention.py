"""Event log retention: prune old events by age and by count, through the group-commit
writer like every other write. The newest row is never deleted, so on SQLite (where the
writer numbers rows max+1) an id is never handed out twice.

On PostgreSQL live streams get events from the log, a moment after their commit, through
each process's log follower (app/worker/postgres/follower.py). So nothing a follower has not
read yet is deleted: every process reports how far it has read (`owners.events_seen`, at
registration and at each heartbeat) and a pruner keeps every event after the lowest report
of the other processes, as SQLite's live streams, fed at commit, never lose an event to
retention. (Reports lag by up to a heartbeat, so events of a busy log outlive their retention
by that much.) A process judged dead (its heartbeat stale) stops holding events back when its
row goes. The pruner's own process is not waited for: its follower reads on the same event
loop, milliseconds behind the commits, far inside any retention but a test's.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, or_, select

from app.clock import now_us, seconds_to_us
from app.db.dialects import alone
from app.db.tables import events, owners
from app.db.writer import GroupCommitWriter, WriteOp, run_in_batches

NOTHING_UNREAD = 2**63 - 1  # past every id: no event is held back
# The advisory lock key of pruning on PostgreSQL ("ltprune" in ASCII): one process prunes at a
# time (app/db/dialects.py `alone`); the others' rounds find it taken and leave the work.
PRUNE_LOCK = 0x6C7470_72756E65


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep events younger than `max_age` seconds and at most `max_count` of them (either
    may be None: no limit). `batch` bounds the rows one transaction deletes."""

    max_age: float | None = 7 * 24 * 3600.0
    max_count: int | None = 1_000_000
    batch: int = 10_000


class PruneEvents(WriteOp[int]):
    """Delete up to `retention.batch` of the oldest events that fall outside `retention`,
    never the newest row. Its outcome is the number deleted."""

    def __init__(self, retention: Retention, now: int | None = None) -> None:
        super().__init__()
        self.retention = retention
        self.now = now_us() if now is None else now

    def apply(self, conn: Connection) -> int:
        if not alone(conn, PRUNE_LOCK):
            return 0
        newest = conn.execute(select(func.max(events.c.id))).scalar()
        if newest is None:
            return 0
        upto = min(self._prune_upto(conn, newest), newest - 1, unread_from(conn) - 1)
        if upto < 1:
            return 0
        victims = (
            select(events.c.id)
            .where(events.c.id <= upto)
            .order_by(events.c.id)
            .limit(self.retention.batch)
        )
        result = conn.execute(delete(events).where(events.c.id.in_(victims)))
        return int(result.rowcount or 0)

    def _prune_upto(self, conn: Connection, newest: int) -> int:
        """The highest id outside the retention (0 when none is)."""
        upto = 0
        if self.retention.max_count is not None:
            upto = newest - self.retention.max_count
        if self.retention.max_age is not None:
            cutoff = self.now - seconds_to_us(self.retention.max_age)
            statement = select(func.max(events.c.id)).where(events.c.created_at < cutoff)
            upto = max(upto, conn.execute(statement).scalar() or 0)
        return upto


def unread_from(conn: Connection) -> int:
    """The lowest event id a live stream of another process may still need from the log:
    after the lowest position their log followers reported (PostgreSQL). On SQLite, where
    events reach streams at their commit, nothing is held back (the largest id)."""
    if conn.dialect.name != "postgresql":
        return NOTHING_UNREAD
    others = or_(owners.c.host != socket.gethostname(), owners.c.pid != os.getpid())
    seen = conn.execute(select(func.min(owners.c.events_seen)).where(others)).scalar()
    return NOTHING_UNREAD if seen is None else int(seen) + 1


async def prune_events(
    writer: GroupCommitWriter, retention: Retention, now: int | None = None
) -> int:
    """Prune in batches until nothing outside `retention` (as of `now`, µs) is left;
    returns rows deleted."""
    at = now_us() if now is None else now
    return await run_in_batches(writer, lambda: PruneEvents(retention, at), retention.batch)
