"""After a move from SQLite (app/db/move.py), in the move's transaction: what the stopped
SQLite service held goes back exactly as its own restart would have put it (app/worker/
recovery.py): `claimed` rows as they were, `running` rows as suspects with one more
interruption (or `failed` past max_interruptions), each of those with its event, logged
after the copied events (ids in commit order, as every PostgreSQL transaction logs them)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, true

from app.db.postgres.writer import log_and_notify
from app.db.tables import status_is
from app.db.write_op import WriteOp
from app.worker.recovery import interrupt, unclaim
from app.worker.status import TaskStatus


class _Moved(WriteOp[None]):
    """Collects the events of the put-back rows."""


def recover_after_move(max_interruptions: int) -> Callable[[Connection], str]:
    """The move's step that puts back what the SQLite service held (see the module)."""

    def step(conn: Connection) -> str:
        op = _Moved()
        returned = len(unclaim(conn, true()))
        running = status_is(TaskStatus.RUNNING)
        requeued, failed = interrupt(op, conn, running, max_interruptions)
        log_and_notify(conn, [op])
        return (
            f"running when the SQLite service stopped: {requeued} put back (as suspects), "
            f"{failed} failed (interrupted more than {max_interruptions} times); claimed "
            f"but not started: {returned} put back"
        )

    return step
