"""Representative rows for every table litetask has had, and databases made at any revision.

`insert_rows` writes one row per table that exists at the database's revision, with the
columns that exist then: a database "as an older release left it". A NOT NULL column missing
from ROWS fails the insert, naming it: give a new column (or table) a value here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
from sqlalchemy import Connection, Engine, MetaData, create_engine, insert

from app.db.files import create_private
from app.db.migrate import upgrade_sync

NOW = 1_767_225_600_000_000  # 2026-01-01, in µs
TASK_ID = "task-from-an-older-release"
ROWS: dict[str, dict[str, Any]] = {
    "tasks": {
        "id": TASK_ID,
        "task_type": "demo.add",
        "status": "completed",
        "priority": 0,
        "args": msgpack.packb([2, 3]),
        "kwargs": msgpack.packb({}),
        "metadata": json.dumps({"source": "migration test"}),
        "progress": 1.0,
        "attempts": 1,
        "max_attempts": 1,
        "interruptions": 0,
        "timeout": None,
        "created_at": NOW,
        "run_at": NOW,
        "started_at": NOW,
        "completed_at": NOW + 1000,
        "result": msgpack.packb(5),
        "from_cache": False,
        "idempotency_key": "older-release-key",
        "idempotency_fingerprint": "0" * 64,
        "cache_key": None,
        "suspect": False,
    },
    "task_attempts": {
        "task_id": TASK_ID,
        "attempt": 1,
        "error_type": "RuntimeError",
        "message": "first try failed",
        "traceback": "Traceback ...",
        "failed_at": NOW + 500,
    },
    "events": {
        "type": "task.completed",
        "task_id": TASK_ID,
        "task_type": "demo.add",
        "created_at": NOW + 1000,
        "payload": json.dumps({"status": "completed"}),
    },
    "cache_entries": {
        "key": "cache-key",
        "value": msgpack.packb(5),
        "size": 1,
        "created_at": NOW,
        "expires_at": None,
        "accessed_at": NOW,
    },
    "webhook_deliveries": {
        "endpoint": "demo.echo",
        "delivery_id": "msg_1",
        "task_id": TASK_ID,
        "received_at": NOW,
    },
    "service_state": {"key": "session_version", "value": 3, "updated_at": NOW},
    "schedules": {
        "name": "reports.hourly",
        "decided_until": NOW,
        "last_slot": NOW - 3600 * 10**6,
        "last_task_id": TASK_ID,
        "updated_at": NOW,
    },
    # An owner that died long ago on another machine: any start takes it over.
    "owners": {
        "boot_id": "boot-of-an-older-release",
        "host": "elsewhere.invalid",
        "pid": 1,
        "process": "",
        "started_at": NOW,
        "heartbeat_at": NOW,
        "expires_at": NOW + 1,
    },
}


def engine_for(database: Path) -> Engine:
    return create_engine(f"sqlite+pysqlite:///{database}")


def database_at(database: Path, revision: str, *, rows: bool = True) -> dict[str, int]:
    """A database file at schema `revision`, with one representative row per table
    (`rows`); the number of rows written per table."""
    create_private(database)  # as litetask makes its databases: 0600
    engine = engine_for(database)
    try:
        upgrade_sync(engine, revision)
        with engine.begin() as conn:
            return insert_rows(conn) if rows else {}
    finally:
        engine.dispose()


# Tables whose rows the schema keeps itself (task_counts: triggers on tasks).
KEPT_BY_THE_SCHEMA = frozenset({"alembic_version", "task_counts"})


def insert_rows(conn: Connection) -> dict[str, int]:
    tables = MetaData()
    tables.reflect(conn)
    written = {}
    for name, table in tables.tables.items():
        if name in KEPT_BY_THE_SCHEMA:
            continue
        row = {k: v for k, v in ROWS[name].items() if k in table.c}
        conn.execute(insert(table).values(row))
        written[name] = 1
    return written


# Rows migrations make themselves (not the representative rows above): not counted.
MADE_BY_MIGRATIONS = {"service_state": "WHERE key <> 'event_log_epoch'"}


def row_counts(conn: Connection, names: list[str]) -> dict[str, int]:
    """Rows per table, leaving out those the migrations make themselves."""
    return {
        n: conn.exec_driver_sql(
            f'SELECT count(*) FROM "{n}" {MADE_BY_MIGRATIONS.get(n, "")}'
        ).scalar_one()
        for n in names
    }
