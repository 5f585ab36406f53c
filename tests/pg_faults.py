"""Fault injection on PostgreSQL: the faults of tests/faults.py, made with PostgreSQL's own
mechanisms from another connection, as the world (an operator, a full volume, a failover)
would. None of them patches litetask's code.

- A held write lock: another session's transaction holds `LOCK TABLE ... IN EXCLUSIVE MODE`
  on every table, as a maintenance script would: writes wait (readers do not: EXCLUSIVE
  lets plain SELECTs through, as SQLite's write lock lets WAL readers through) until the
  writer's `lock_timeout` answers 55P03 lock_not_available.
- A full disk: PostgreSQL cannot be given a small volume here, and a real full WAL volume
  PANICs the server, so a stand-in: a trigger on every table raises SQLSTATE 53100
  (disk_full, the code PostgreSQL gives "could not extend file") for any row bigger than
  the room left, a one-row table the test changes. Small rows still fit, as rows fit in
  free space of existing pages; `room = 0` refuses every insert and update.
- A read-only database: `ALTER DATABASE ... SET default_transaction_read_only = on` and
  every session of that database terminated, as after a failover to a read-only server:
  the new sessions refuse writes with 25006 read_only_sql_transaction. `release()` resets
  it and terminates the sessions again (they keep the setting they started with).
- A rejecting trigger: a plpgsql trigger that RAISEs (SQLSTATE P0001, the write's own fault).

None of them takes a lock that waits for readers (DROP TRIGGER would): the helpers are
synchronous, called from the test's event loop, which is also what runs the app's readers,
so such a wait never ends. Triggers are disabled or left with no room instead of dropped.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql as q

FAULT_SCHEMA = "litetask_faults"
PAGE_BYTES = 8192  # a heap page: a row larger than this needs new pages (TOAST)
DISK_FULL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FAULT_SCHEMA}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_column_size(NEW) > (SELECT room FROM {FAULT_SCHEMA}.disk) THEN
    RAISE EXCEPTION USING ERRCODE = 'disk_full',
      MESSAGE = 'could not extend file: No space left on device (injected by the tests)';
  END IF;
  RETURN NEW;
END $$"""


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy PostgreSQL URL."""
    return "postgresql://" + url.split("://", 1)[1]


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(conninfo(url), autocommit=True)


def app_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(str(name) for (name,) in rows.fetchall())


class HeldTransaction:
    """A transaction another connection keeps open (holding its locks) until `release()`
    rolls it back and closes that connection."""

    _conn: Any
    held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._conn.execute("ROLLBACK")
            self._conn.close()


class PostgresWriteLock(HeldTransaction):
    """Another session holding every table in EXCLUSIVE mode until `release()`."""

    reason = "lock_not_available"

    def __init__(self, url: str) -> None:
        self._conn = connect(url)
        self._conn.execute("BEGIN")
        tables = q.SQL(", ").join(q.Identifier(t) for t in app_tables(self._conn))
        self._conn.execute(q.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(tables))


class PostgresDiskFull:
    """Rows bigger than `room` bytes are refused with 53100 (see the module docstring)
    until `free()`; `fill()` takes the room away again. `close()` frees: the triggers stay
    (dropping one would wait for every reader of its table, and the test's event loop,
    blocked in that wait, runs those readers), each database is the test's own."""

    reason = "disk_full"

    def __init__(self, url: str, room: int = PAGE_BYTES) -> None:
        self.url, self.room = url, room
        with connect(url) as conn:
            installed = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (FAULT_SCHEMA,)
            ).fetchone()
            if installed is None:
                install_disk_full(conn)
        self.fill()

    def _set_room(self, room: int | None) -> None:
        with connect(self.url) as conn:
            conn.execute(f"UPDATE {FAULT_SCHEMA}.disk SET room = %s", (room,))

    def fill(self) -> None:
        self._set_room(self.room)

    def free(self) -> None:
        """Room again: the next transaction may store rows of any size."""
        self._set_room(None)

    def close(self) -> None:
        self.free()


def install_disk_full(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The disk-full trigger on every table, with room for anything until filled."""
    conn.execute(f"CREATE SCHEMA {FAULT_SCHEMA}")
    conn.execute(f"CREATE TABLE {FAULT_SCHEMA}.disk (room bigint)")
    conn.execute(f"INSERT INTO {FAULT_SCHEMA}.disk VALUES (NULL)")
    conn.execute(DISK_FULL_FUNCTION)
    for table in app_tables(conn):
        conn.execute(
            q.SQL(
                "CREATE TRIGGER litetask_disk_full BEFORE INSERT OR UPDATE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}.disk_full()"
            ).format(q.Identifier(table), q.Identifier(FAULT_SCHEMA))
        )


class PostgresReadOnly:
    """Every new transaction of this database is read-only (25006) until `release()`."""

    reason = "read_only_sql_transaction"

    def __init__(self, url: str) -> None:
        self.url = url
        self._set("on")

    def _set(self, value: str) -> None:
        with connect(self.url) as conn:
            conn.execute("SET default_transaction_read_only = off")  # this session may
            name = q.Identifier(str(conn.info.dbname))
            conn.execute(
                q.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                    name, q.SQL(value)
                )
            )
            terminate_sessions(conn)

    def release(self) -> None:
        self._set("off")

    def close(self) -> None:
        """Nothing left to undo once released."""


def terminate_sessions(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Terminate every other session of `conn`'s database (they reconnect with the
    database's settings of now)."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


def add_rejecting_trigger(
    url: str, name: str, event: str, table: str, message: str, when: str | None
) -> None:
    """A row trigger on `table` that RAISEs `message` on `event` (when `when` holds)."""
    condition = f"WHEN ({when})" if when else ""
    with connect(url) as conn:
        conn.execute(
            f"CREATE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$BEGIN RAISE EXCEPTION '{message}'; END$$"
        )
        conn.execute(
            f"CREATE TRIGGER {name} {event} ON {table} FOR EACH ROW {condition} "
            f"EXECUTE FUNCTION {name}_fn()"
        )


def drop_trigger(url: str, name: str) -> None:
    """Disables the trigger: DROP TRIGGER would wait for every reader of its table, and the
    test's event loop, blocked in that wait, is what runs them; DISABLE waits only for
    writers."""
    with connect(url) as conn:
        query = "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = %s"
        row = conn.execute(query, (name,))
        (table,) = row.fetchone() or (None,)
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
