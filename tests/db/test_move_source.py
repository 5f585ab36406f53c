"""Reading the source of a move: batches are bounded in bytes as well as rows, so tasks
with megabytes of arguments never pile up a thousand at a time in memory."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from sqlalchemy import create_engine, insert

from app.db.move_source import BATCH_BYTES, SourceSnapshot
from app.db.tables import metadata, tasks

MIB = 1024 * 1024


def test_batches_are_cut_by_bytes_as_well_as_rows(tmp_path: Path) -> None:
    database = tmp_path / "source.db"
    engine = create_engine(f"sqlite:///{database}")
    metadata.create_all(engine)
    big = BATCH_BYTES // 2 + MIB  # two of these pass the byte bound
    rows = [
        {
            "id": f"t{n}",
            "task_type": "x",
            "status": "pending",
            "args": b"\x90" * big,
            "kwargs": b"\x80",
            "metadata": {},
            "max_attempts": 1,
            "created_at": 0,
            "run_at": 0,
        }
        for n in range(5)
    ]
    with engine.begin() as conn:
        conn.execute(insert(tasks), rows)
    engine.dispose()
    with closing(SourceSnapshot(database)) as snapshot:
        sizes = [len(batch) for batch in snapshot.batches(tasks, 1000)]
        assert sizes == [2, 2, 1]
        assert [len(batch) for batch in snapshot.batches(tasks, 3)] == [2, 2, 1]
        ids = [row["id"] for batch in snapshot.batches(tasks, 1) for row in batch]
    assert ids == [f"t{n}" for n in range(5)]
