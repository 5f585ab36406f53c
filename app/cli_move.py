"""`litetask move-to-postgres`: copy a stopped SQLite service's database (its queue, its
history and its event log) into a PostgreSQL database (app/db/move.py does the work;
docs/scaling.md, "Moving from SQLite", tells a user how and what to expect)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from app.config import ConfigError, Settings
from app.env_values import mask_url

# Seconds between two progress lines of one table (its first and last are always shown).
PROGRESS_EVERY = 2.0


def add_parsers(commands: Any) -> None:
    """Add `move-to-postgres` to the `litetask` parser."""
    move = commands.add_parser(
        "move-to-postgres",
        help="copy a stopped SQLite service's database (queue, history, events) to PostgreSQL",
    )
    move.add_argument(
        "--from",
        dest="source",
        metavar="SQLITE",
        help="the SQLite database: a file or a sqlite URL (default LITETASK_DATABASE_URL)",
    )
    move.add_argument(
        "--to",
        dest="target",
        metavar="URL",
        required=True,
        help="the PostgreSQL database, e.g. postgresql+asyncpg://user:password@host/name",
    )
    move.add_argument(
        "--replace",
        action="store_true",
        help="delete the litetask data the target holds and put the source's in its place "
        "(without it, a target holding any is refused)",
    )


def source_path(given: str | None) -> Path:
    """The SQLite file to move: --from (a path or a sqlite URL), else the configured one."""
    from app.db.engine import sqlite_path

    if given is not None and "://" not in given:
        return Path(given).resolve()
    url = given if given is not None else Settings.from_env().database_url
    path = sqlite_path(url)
    if path is None:
        raise ConfigError(
            "move-to-postgres copies a SQLite database: give --from FILE (or a sqlite URL); "
            f"{mask_url(url)} is not one"
        )
    return path


def target_url(given: str) -> str:
    from app.db.postgres.engine import is_postgres

    if not is_postgres(given):
        raise ConfigError(
            "--to must be a PostgreSQL URL, e.g. postgresql+asyncpg://user:password@host/name"
        )
    return given


class ProgressLines:
    """Progress on stderr: a line when a table starts and ends, and every few seconds."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, table: str, done: int, total: int) -> None:
        now = time.monotonic()
        if 0 < done < total and now - self._last < PROGRESS_EVERY:
            return
        self._last = now
        print(f"litetask: {table}: {done} of {total} rows", file=sys.stderr, flush=True)


def run_move(args: argparse.Namespace) -> int:
    from app.db.move import move_database
    from app.worker.postgres.moved import recover_after_move

    source, target = source_path(args.source), target_url(args.target)
    settings = Settings.from_env()
    # The migrations' own lines say nothing the progress lines do not.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    moved = move_database(
        source,
        target,
        replace=args.replace,
        steps=[recover_after_move(settings.max_interruptions)],
        progress=ProgressLines(),
    )
    print(f"litetask: moved {source} to {mask_url(target)}")
    for table, count in moved.rows.items():
        print(f"  {table}: {count}")
    for note in moved.notes:
        print(f"  {note}")
    print(
        f"  event ids go on after {moved.last_event_id}, in the same log epoch: SSE clients "
        "resume with their Last-Event-ID"
    )
    print(
        "Next: keep the SQLite service stopped, set LITETASK_DATABASE_URL to the PostgreSQL "
        "URL and start `litetask serve` (docs/scaling.md)."
    )
    return 0


COMMANDS: Mapping[str, Callable[[argparse.Namespace], int]] = MappingProxyType(
    {"move-to-postgres": run_move}
)
