"""Choosing the backend's parts: the writer (SQLite's, or PostgreSQL's with the ops whose
SQL differs), and on PostgreSQL the loop that wakes an idle pool when another process made
work (app/worker/postgres/wake.py)."""

from __future__ import annotations

from typing import Any

from app.db.engine import Engines
from app.db.owner import Heartbeat
from app.db.postgres.engine import is_postgres
from app.db.postgres.writer import BatchApply, PostgresWriter
from app.db.writer import GroupCommitWriter
from app.worker.claims import ClaimTasks
from app.worker.control import CancelTask
from app.worker.pool import WorkerPool
from app.worker.postgres.cancels import cancel_batch
from app.worker.postgres.claims import claim_batch, stage_batch
from app.worker.postgres.follower import Deliver, LogFollower
from app.worker.postgres.processes import heartbeat_batch, recover_batch
from app.worker.postgres.wake import Wake
from app.worker.recovery import RecoverInterrupted
from app.worker.stager import StageDue


def postgres_overrides(max_interruptions: int) -> dict[type[Any], BatchApply]:
    return {
        ClaimTasks: claim_batch,
        StageDue: stage_batch,
        RecoverInterrupted: recover_batch,
        Heartbeat: heartbeat_batch(max_interruptions),
        CancelTask: cancel_batch,
    }


def build_writer(engines: Engines, max_interruptions: int, **options: Any) -> GroupCommitWriter:
    """The group-commit writer for the engines' database."""
    if is_postgres(engines.url):
        overrides = postgres_overrides(max_interruptions)
        return PostgresWriter(engines.writer, overrides=overrides, **options)
    return GroupCommitWriter(engines.writer, **options)


def follows_log(url: str) -> bool:
    """True where logged events reach subscribers from the log (app/worker/postgres/
    follower.py), not from the commit that wrote them: on PostgreSQL."""
    return is_postgres(url)


async def start_wake(engines: Engines, pool: WorkerPool, deliver: Deliver) -> Wake | None:
    """On PostgreSQL, what wakes this pool for work other processes made and follows the
    event log for `deliver`; None on SQLite (one process: its own puts wake it, its own
    commits publish)."""
    if not follows_log(engines.url):
        return None
    wake = Wake(engines.url, pool, LogFollower(engines.reader, deliver))
    await wake.start()
    return wake
