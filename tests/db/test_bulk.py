"""Bulk inserts: rows land exactly as the ordinary Core insert would store them, in order,
whatever the batch size (multi-row statements are cut into power-of-two chunks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select

from app.db.bulk import insert_rows, json_text
from app.db.tables import events, metadata, tasks

COLUMNS = ("id", "type", "task_id", "task_type", "created_at", "payload")


@pytest.mark.parametrize("count", [1, 3, 32, 100, 300])
def test_rows_match_a_core_insert(tmp_path: Path, count: int) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    metadata.create_all(engine)
    payloads = [{"n": i, "group": None if i % 2 else "g", "s": "é\u2028"} for i in range(count)]
    with engine.begin() as conn:
        rows = [
            (i + 1, "task.queued", f"t{i}", "x", i, json_text(p)) for i, p in enumerate(payloads)
        ]
        insert_rows(conn, events, COLUMNS, rows)
        bulk = conn.execute(select(events).order_by(events.c.id)).all()
        conn.execute(events.delete())
        conn.execute(
            insert(events),
            [
                {
                    "id": i + 1,
                    "type": "task.queued",
                    "task_id": f"t{i}",
                    "task_type": "x",
                    "created_at": i,
                    "payload": p,
                }
                for i, p in enumerate(payloads)
            ],
        )
        core = conn.execute(select(events).order_by(events.c.id)).all()
    assert bulk == core
    assert [row.payload for row in bulk] == payloads
    engine.dispose()


def test_columns_the_insert_would_add_are_refused(tmp_path: Path) -> None:
    """Leaving out a column with a default would bind more values than a row carries."""
    engine = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(ValueError, match="would bind"):
        insert_rows(conn, tasks, ("id", "task_type"), [("a", "x")])
    engine.dispose()
