"""A real PostgreSQL server for the tests: `initdb` into a temporary directory, `pg_ctl start`
on a free loopback port, a fresh database per test, everything removed at the end.

PostgreSQL refuses to run as root, so under root the server runs as the unprivileged
`postgres` system user (via `runuser`) with a data directory it owns. Without binaries the
tests that need it skip, saying where they looked.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.db.postgres.writer import EVENT_LOG_LOCK

SEARCH = ("/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
SUPERUSER = "litetask"


def find_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: on PATH, else Debian's place."""
    on_path = shutil.which("initdb")
    places = [str(Path(on_path).parent)] if on_path else []
    for place in [*places, *SEARCH]:
        if all(os.access(Path(place, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(place)
    return None


def missing_reason() -> str:
    return "no PostgreSQL binaries (initdb, pg_ctl, postgres) on PATH or in " + ", ".join(SEARCH)


def _run_as() -> list[str]:
    """The prefix that runs a command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PostgresServer:
    """One running server; `url(name)` is a SQLAlchemy URL of database `name` on it."""

    bin_dir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER]
        self._run([*initdb, "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options]
        self._run([*pg_ctl, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start"])

    def _run(self, command: list[str]) -> None:
        subprocess.run([*_run_as(), *command], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run([*_run_as(), *pg_ctl], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def admin_url(self, name: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def url(self, name: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database `create_database` made (its sessions, if any left, terminated):
        a test's database goes with it, so a run keeps its disk use to the tests at hand
        and the server's removal at the end stays short."""
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_postgres(port: int) -> PostgresServer:
    """A started server, or RuntimeError saying why it would not start."""
    bin_dir = find_binaries()
    if bin_dir is None:
        raise FileNotFoundError(missing_reason())
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="litetask-pg-")), port)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = server.root / "server.log"
        detail = log.read_text() if log.exists() else ""
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r} {detail}") from exc
    return server


def postgres_sql(url: str, statement: str) -> list[tuple[object, ...]]:
    """Run one statement (committed) on the database of SQLAlchemy URL `url` through psycopg;
    its rows, if it returns any."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        cursor = conn.execute(statement)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def conninfo(url: str) -> str:
    """psycopg's connection string for SQLAlchemy URL `url`."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.contextmanager
def commits_held(url: str) -> Iterator[Callable[[int], bool]]:
    """Hold the event log's lock (every transaction that logs events takes it before its
    commit) as a slow transaction would: writers wait there with their rows inserted. Gives
    `waiting(n)`: at least n transactions wait on a lock now."""
    with psycopg.connect(conninfo(url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (EVENT_LOG_LOCK,))

        def waiting(count: int) -> bool:
            rows = holder.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchall()
            return int(rows[0][0]) >= count

        yield waiting
