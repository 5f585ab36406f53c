"""Moving a SQLite service's database to PostgreSQL (`litetask move-to-postgres`).

Order, so that a failure at any step leaves the target without a row of the source:
1. take the source's process lock for the whole move (a running service holds it: refused)
   and refuse while its owner row says a process lives (the lock file may have been
   deleted); no service can start on the source until the move is over;
2. bring the target to the current schema (as `litetask migrate` would), then the source,
   if it is older (as its next start would, with its pre-migration copy);
3. in ONE transaction on the target: lock litetask's tables, refuse while a litetask
   process lives on it, refuse a target that holds tasks, events or other rows unless
   `replace` (then empty it), copy every table in batches from one read transaction of the
   source, keeping every id (task seq, attempt and event ids), set the sequences past the
   copied ids, run the caller's steps (putting back what the stopped service held);
4. give the source's event log a new epoch (so going back to it resets SSE clients instead
   of resuming on ids that mean other events there), then commit the target.
The target keeps the source's epoch: an SSE client resumes there with the id it had.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, TextClause, create_engine, insert, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from app.db.lock import ProcessLock
from app.db.migrate import check_known, upgrade_sync
from app.db.move_source import SourceSnapshot, schema_revision_of
from app.db.owner import refuse_live_owner
from app.db.postgres.counts import fold_counts
from app.db.postgres.engine import postgres_sync_url
from app.db.service_state import new_epoch_after_restore
from app.db.tables import (
    cache_entries,
    events,
    schedules,
    service_state,
    task_attempts,
    tasks,
    webhook_deliveries,
)
from app.env_values import mask_url
from app.errors import DatabaseInUseError, MoveError

# Copied in this order (attempts reference tasks). Not copied: `owners` (the source's
# processes are gone), `task_counts` (PostgreSQL's are kept by triggers from the rows).
TABLES = (tasks, task_attempts, events, schedules, webhook_deliveries, cache_entries, service_state)
# Tables a target must not hold rows in (service_state holds the epoch made by the
# migrations: replaced by the source's).
HOLDING = TABLES[:-1]
SEQUENCES = ((tasks.name, "seq"), (task_attempts.name, "id"), (events.name, "id"))
LOCKED = (*(table.name for table in TABLES), "owners", "task_count_deltas")
BATCH_ROWS = 1000
LOCK_TIMEOUT = "10s"
BUSY = "55P03"  # lock_not_available

# (table, rows copied so far, rows in all)
Progress = Callable[[str, int, int], None]
# Run on the target inside the move's transaction, after the copy; a line for the summary.
TargetStep = Callable[[Connection], str]


@dataclass(frozen=True, slots=True)
class Moved:
    """A finished move: rows copied per table, the steps' lines, the last event id."""

    rows: dict[str, int]
    notes: list[str] = field(default_factory=list)
    last_event_id: int = 0


def move_database(
    source: Path,
    target_url: str,
    *,
    replace: bool = False,
    steps: Sequence[TargetStep] = (),
    progress: Progress | None = None,
) -> Moved:
    """Copy the SQLite database at `source` into the PostgreSQL database at `target_url`
    (see the module's docstring). DatabaseInUseError while a process serves either,
    MoveError (or SchemaRevisionError) for anything else refused; nothing is written to
    the target then."""
    if not source.is_file():
        raise MoveError(f"there is no database at {source}")
    lock = ProcessLock(source)
    lock.acquire_now()
    try:
        with _source_errors(source):
            _check_source(source)
        target = create_engine(postgres_sync_url(target_url), poolclass=NullPool)
        try:
            with _target_errors(target_url):
                upgrade_sync(target)
            with _source_errors(source):
                _bring_to_head(source)
            with _target_errors(target_url), _source_errors(source):
                return _copy(source, target, replace, steps, progress or _quiet)
        finally:
            target.dispose()
    finally:
        lock.release()


def _quiet(_table: str, _done: int, _total: int) -> None:
    return None


def _check_source(source: Path) -> None:
    _on_source(source, refuse_live_owner)
    revision = schema_revision_of(source)
    if revision is None:
        raise MoveError(f"{source} is not a litetask database (it has no schema revision)")
    check_known(revision, str(source))


def _bring_to_head(source: Path) -> None:
    engine = _sqlite_engine(source)
    try:
        upgrade_sync(engine)
    finally:
        engine.dispose()


def _sqlite_engine(path: Path) -> Engine:
    return create_engine(f"sqlite+pysqlite:///{path}", poolclass=NullPool)


@contextmanager
def _source_errors(source: Path) -> Iterator[None]:
    """The source's errors (not a database, damaged, unreadable) as one line."""
    try:
        yield
    except (sqlite3.Error, DBAPIError) as exc:
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if not isinstance(orig, sqlite3.Error):
            raise
        raise MoveError(f"cannot read the source database {source}: {orig}") from None


@contextmanager
def _target_errors(url: str) -> Iterator[None]:
    """The target's errors as one line a user can act on (its password masked)."""
    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        where = mask_url(url)
        if getattr(exc.orig, "sqlstate", None) == BUSY:
            raise MoveError(
                f"the target database {where} is busy (a litetask process or another client "
                "uses its tables); stop them and run the move again. Nothing was written"
            ) from None
        if isinstance(exc, OperationalError):
            raise MoveError(f"cannot reach the target database {where}: {reason}") from None
        raise MoveError(
            f"the target database {where} refused the copy: {reason}. Nothing was written to it"
        ) from None


def _copy(
    source: Path, target: Engine, replace: bool, steps: Sequence[TargetStep], progress: Progress
) -> Moved:
    with target.connect() as conn:
        with closing(SourceSnapshot(source)) as snapshot:
            snapshot.check_references()
            _prepare_target(conn, replace)
            rows = {t.name: _copy_table(snapshot, conn, t, progress) for t in TABLES}
        last_event_id = _continue_sequences(conn)
        notes = [step(conn) for step in steps]
        fold_counts(conn)
        _on_source(source, new_epoch_after_restore)
        conn.commit()
    return Moved(rows, notes, last_event_id)


def _prepare_target(conn: Connection, replace: bool) -> None:
    """Inside the move's transaction: the target locked, no live process on it, empty
    (emptied with `replace`), its migrations' epoch and dead processes' rows gone."""
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text(f"LOCK TABLE {', '.join(LOCKED)} IN ACCESS EXCLUSIVE MODE"))
    try:
        refuse_live_owner(conn)
    except DatabaseInUseError as exc:
        raise DatabaseInUseError(f"the target: {exc}") from None
    held = {t.name: n for t in HOLDING if (n := conn.scalar(_count(t.name)) or 0)}
    if held and not replace:
        listed = ", ".join(f"{n} {name}" for name, n in held.items())
        raise MoveError(
            f"the target database already holds litetask data ({listed}); move into an "
            "empty database, or add --replace to delete it and replace it with the source's"
        )
    conn.execute(text(f"TRUNCATE {', '.join(LOCKED)}"))


def _count(table: str) -> TextClause:
    return text(f"SELECT count(*) FROM {table}")


def _copy_table(
    snapshot: SourceSnapshot, conn: Connection, table: Table, progress: Progress
) -> int:
    total, done = snapshot.count(table), 0
    progress(table.name, done, total)
    for batch in snapshot.batches(table, BATCH_ROWS):
        conn.execute(insert(table), batch)
        done += len(batch)
        progress(table.name, done, total)
    return done


def _continue_sequences(conn: Connection) -> int:
    """Each id sequence set past the copied ids; the newest event id copied (0: none)."""
    newest: dict[str, int] = {}
    for table, column in SEQUENCES:
        newest[table] = int(conn.scalar(text(f"SELECT coalesce(max({column}), 0) FROM {table}")))
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:t, :c), :next, false)"),
            {"t": table, "c": column, "next": newest[table] + 1},
        )
    return newest[events.name]


def _on_source(source: Path, step: Callable[[Connection], None]) -> None:
    """Run `step` on the source in one transaction of its own."""
    engine = _sqlite_engine(source)
    try:
        with engine.begin() as conn:
            step(conn)
    finally:
        engine.dispose()
