"""The SQLite cache adapter's writes, as group-commit `WriteOp`s (see app/db/writer.py).

Sets that arrive together share one transaction: one executemany upsert, then one purge of
expired rows and one LRU eviction for the whole batch, both index walks (expires_at,
accessed_at). Recency (`accessed_at`) only moves forward, so a late batch of touches can
never make an entry look older than it is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, func, or_, select, update

from app.clock import now_us
from app.db.dialects import greatest, insert_for
from app.db.tables import cache_entries
from app.db.writer import WriteOp

entries = cache_entries.c


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: bytes
    created_at: int
    expires_at: int | None
    accessed_at: int


class TouchEntries(WriteOp[None]):
    """Record reads for LRU: key -> time of the latest read (µs)."""

    def __init__(self, touches: Mapping[str, int]) -> None:
        super().__init__()
        self.touches = dict(touches)

    def apply(self, conn: Connection) -> None:
        apply_touches(conn, self.touches)


class SetEntry(WriteOp[int]):
    """Upsert one entry, apply the reads recorded before it, then keep at most
    `max_entries` live rows. The outcome is how many live rows were evicted."""

    def __init__(self, entry: Entry, touches: Mapping[str, int], max_entries: int | None) -> None:
        super().__init__()
        self.entry, self.touches, self.max_entries = entry, dict(touches), max_entries

    @classmethod
    def apply_batch(cls, conn: Connection, ops: Sequence[Self]) -> None:
        touches: dict[str, int] = {}
        for op in ops:
            touches.update(op.touches)
        apply_touches(conn, touches)
        conn.execute(_upsert(conn.dialect.name), [_row(op.entry) for op in ops])
        purge_expired(conn, now_us())
        evicted = _evict(conn, _tightest(op.max_entries for op in ops))
        for op in ops:
            op.set_result(0)
        ops[-1].set_result(evicted)  # the batch's evictions, counted once


class DeleteEntry(WriteOp[bool]):
    """Remove one row; the outcome says whether it held a live entry."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def apply(self, conn: Connection) -> bool:
        statement = (
            delete(cache_entries).where(entries.key == self.key).returning(entries.expires_at)
        )
        row = conn.execute(statement).first()
        return row is not None and not is_expired(row.expires_at, now_us())


class ClearEntries(WriteOp[None]):
    def apply(self, conn: Connection) -> None:
        conn.execute(delete(cache_entries))


def is_expired(expires_at: int | None, now: int) -> bool:
    return expires_at is not None and expires_at <= now


def live_at(now: int) -> ColumnElement[bool]:
    """WHERE clause of rows not expired at `now` (µs)."""
    return or_(entries.expires_at.is_(None), entries.expires_at > now)


def apply_touches(conn: Connection, touches: Mapping[str, int]) -> None:
    if touches:
        rows = [{"b_key": key, "b_at": at} for key, at in touches.items()]
        conn.execute(_TOUCH, rows)


def purge_expired(conn: Connection, now: int) -> None:
    conn.execute(
        delete(cache_entries).where(
            and_(entries.expires_at.is_not(None), entries.expires_at <= now)
        )
    )


def _evict(conn: Connection, max_entries: int | None) -> int:
    """Delete the least recently used rows beyond `max_entries` (expired ones already gone)."""
    if max_entries is None:
        return 0
    count = conn.execute(select(func.count()).select_from(cache_entries)).scalar_one()
    excess = int(count) - max_entries
    if excess <= 0:
        return 0
    victims = (
        select(entries.key).order_by(entries.accessed_at, entries.key).limit(excess)
    ).scalar_subquery()
    result = conn.execute(delete(cache_entries).where(entries.key.in_(victims)))
    return int(result.rowcount)


def _tightest(limits: Iterable[int | None]) -> int | None:
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def _row(entry: Entry) -> dict[str, object]:
    return {
        "key": entry.key,
        "value": entry.value,
        "size": len(entry.value),
        "created_at": entry.created_at,
        "expires_at": entry.expires_at,
        "accessed_at": entry.accessed_at,
    }


_TOUCH = (
    update(cache_entries)
    .where(entries.key == bindparam("b_key"))
    .values(accessed_at=greatest(entries.accessed_at, bindparam("b_at")))
)


@functools.cache
def _upsert(dialect_name: str) -> Any:
    insert = insert_for(dialect_name, cache_entries)
    return insert.on_conflict_do_update(
        index_elements=[entries.key],
        set_={
            **{
                name: insert.excluded[name]
                for name in ("value", "size", "created_at", "expires_at")
            },
            "accessed_at": greatest(entries.accessed_at, insert.excluded.accessed_at),
        },
    )
