"""One process per SQLite file: an exclusive, non-blocking lock on `<database>.lock`.

A second process on the same file must refuse to start, not "recover" the live one's tasks.
The kernel drops the lock when the process dies, kill -9 included.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from app.db.files import open_private
from app.errors import DatabaseInUseError


class ProcessLock:
    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".lock")
        self._fd: int | None = None

    async def acquire(self) -> None:
        await asyncio.to_thread(self._acquire)

    def acquire_now(self) -> None:
        """acquire() for synchronous callers: commands that run with the service stopped."""
        self._acquire()

    def _acquire(self) -> None:
        fd = open_private(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DatabaseInUseError(
                f"another litetask process (pid {holder}) is already using "
                f"{self.path.with_suffix('')}; stop it first or use another database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
