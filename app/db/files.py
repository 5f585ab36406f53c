"""Private files: the database, its -wal/-shm and the lock are readable by their owner only.

SQLite gives the -wal and -shm files the permissions of the main database file, so creating
that file 0600 before SQLite opens it covers all three. A directory litetask has to create
for them is 0700. Files that already exist keep their mode; one that other users can read is
reported at start.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """Open `path` (creating it and its directory, private, when missing); a descriptor."""
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        logger.warning("%s is readable by other users (mode %o): chmod 600 it", path, mode)
    return fd


def create_private(path: Path) -> None:
    """Make sure `path` exists, created private if it did not."""
    os.close(open_private(path))


def create_new_private(path: Path) -> None:
    """Create `path` empty and private (0600); FileExistsError if anything is there."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))


def sync_path(path: Path) -> None:
    """Flush `path` to disk: a file's content, or a directory's entries after a rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
