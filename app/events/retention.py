"""Event log retention: prune old events by age and by count, through the group-commit
writer like every other write. The newest row is never deleted, so on SQLite (where the
writer numbers rows max+1) an id is never handed out twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select

from app.clock import now_us, seconds_to_us
from app.db.tables import events
from app.db.writer import GroupCommitWriter, WriteOp, run_in_batches


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
        newest = conn.execute(select(func.max(events.c.id))).scalar()
        if newest is None:
            return 0
        upto = min(self._prune_upto(conn, newest), newest - 1)
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


async def prune_events(
    writer: GroupCommitWriter, retention: Retention, now: int | None = None
) -> int:
    """Prune in batches until nothing outside `retention` (as of `now`, µs) is left;
    returns rows deleted."""
    at = now_us() if now is None else now
    return await run_in_batches(writer, lambda: PruneEvents(retention, at), retention.batch)
