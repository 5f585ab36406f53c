"""`litetask backup PATH` and `litetask restore PATH`, as real processes next to a real
`litetask serve`: a backup taken while the service accepts tasks is whole, checked and
private; a restore refuses while a service owns the database and refuses a bad backup,
replaces the database atomically, keeps the replaced one, and the service starts on it."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ROOT, ServerProcess
from tests.db.migration_rows import TASK_ID, database_at
from tests.db.test_migrations import HEAD

StartServer = Callable[..., ServerProcess]


def litetask(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `litetask ARGS` on `database` with the usual umask 022."""
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITETASK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=database.parent,
        preexec_fn=lambda: os.umask(0o022),
    )


def submit(url: str, count: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return [accept(client, i) for i in range(count)]


def accept(client: httpx.Client, i: int) -> str:
    response = client.post("/tasks", json={"task_type": "demo.echo", "kwargs": {"n": i}})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def keep_submitting(url: str, stop: threading.Event, accepted: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            accepted.append(accept(client, len(accepted)))


def task_ids(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM tasks")}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_line_error(done: subprocess.CompletedProcess[str], words: str) -> None:
    """Exit 1 with the reason on one `litetask: ` line (after any log lines), no traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("litetask: ")]
    assert len(said) == 1 and words in said[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_backup_while_serving_holds_every_task_committed_before_it(
    tmp_path: Path, start_server: StartServer, free_port: int
) -> None:
    server = start_server(free_port)
    database, copy = tmp_path / "litetask.db", tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    committed = submit(server.url, 100)
    stop, during = threading.Event(), list[str]()
    writer = threading.Thread(target=keep_submitting, args=(server.url, stop, during))
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while len(during) < 5:  # the service is taking writes when the backup starts
            assert writer.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        committed += during[:]
        in_flight = len(during)
        done = litetask(database, "backup", str(copy))
        after_backup = len(during)
    finally:
        stop.set()
        writer.join(30)
    assert done.returncode == 0, done.stderr
    assert after_backup > in_flight  # it went on accepting tasks meanwhile
    assert "integrity ok" in done.stdout
    assert mode(copy) == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
    assert set(committed) <= task_ids(copy)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]  # no partial file


def test_a_backup_replaces_an_older_file_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    database = tmp_path / "litetask.db"
    one_line_error(litetask(database, "backup", str(tmp_path / "b.db")), "no database")
    database_at(database, "head")
    old = tmp_path / "b.db"
    old.write_text("an older backup")
    old.chmod(0o644)
    done = litetask(database, "backup", str(old))
    assert done.returncode == 0, done.stderr
    assert mode(old) == 0o600 and task_ids(old) == {TASK_ID}
    one_line_error(litetask(database, "backup", str(tmp_path / "nowhere" / "b.db")), "nowhere")
    one_line_error(litetask(database, "backup", str(tmp_path)), "is a directory")
    one_line_error(litetask(database, "backup", str(database)), "the database itself")


def test_restore_refuses_while_a_service_owns_the_database(
    tmp_path: Path, start_server: StartServer, free_port: int
) -> None:
    server = start_server(free_port)
    database, copy = tmp_path / "litetask.db", tmp_path / "copy.db"
    submit(server.url, 3)
    assert litetask(database, "backup", str(copy)).returncode == 0
    submit(server.url, 2)
    done = litetask(database, "restore", str(copy))
    one_line_error(done, "stop it first")
    assert len(task_ids(database)) == 5
    assert not list(tmp_path.glob("*.before-restore-*"))


def test_restore_replaces_the_database_and_keeps_the_old_one(
    tmp_path: Path, start_server: StartServer, free_port: int
) -> None:
    database, copy = tmp_path / "litetask.db", tmp_path / "copy.db"
    server = start_server(free_port)
    kept_by_backup = submit(server.url, 3)
    assert litetask(database, "backup", str(copy)).returncode == 0
    lost_by_restore = submit(server.url, 3)
    server.signal(signal.SIGKILL)  # a crash: the newest commits are still in the -wal
    server.wait()
    assert Path(f"{database}-wal").stat().st_size > 0

    done = litetask(database, "restore", str(copy))
    assert done.returncode == 0, done.stderr
    (replaced,) = tmp_path.glob("litetask.db.before-restore-*")
    assert str(replaced) in done.stdout
    assert not Path(f"{database}-wal").exists() and not Path(f"{database}-shm").exists()
    assert mode(database) == 0o600 and mode(replaced) == 0o600
    assert task_ids(replaced) == set(kept_by_backup + lost_by_restore)

    server = start_server(free_port)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert all(client.get(f"/tasks/{i}").status_code == 200 for i in kept_by_backup)
        assert all(client.get(f"/tasks/{i}").status_code == 404 for i in lost_by_restore)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_restore_refuses_a_bad_backup_and_leaves_the_database_alone(tmp_path: Path) -> None:
    database = tmp_path / "litetask.db"
    database_at(database, "head")
    before = digest(database)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    one_line_error(litetask(database, "restore", str(garbage)), str(garbage))
    corrupt = tmp_path / "corrupt.db"
    database_at(corrupt, "head")
    with corrupt.open("r+b") as f:  # a page of the tasks table's b-tree overwritten
        f.seek(2 * 4096)
        f.write(b"\xff" * 4096)
    one_line_error(litetask(database, "restore", str(corrupt)), "corrupt.db")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    one_line_error(litetask(database, "restore", str(foreign)), "not a litetask database")
    newer = tmp_path / "newer.db"
    database_at(newer, "head")
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    one_line_error(litetask(database, "restore", str(newer)), "revision 9999")
    one_line_error(litetask(database, "restore", str(tmp_path / "missing.db")), "missing.db")
    assert digest(database) == before
    leftovers = {p.name for p in tmp_path.iterdir()} - {
        "litetask.db",
        "litetask.db.lock",
        "garbage.db",
        "corrupt.db",
        "foreign.db",
        "newer.db",
    }
    assert leftovers == set()


def test_an_older_backup_is_restored_at_the_current_schema(
    tmp_path: Path, start_server: StartServer, free_port: int
) -> None:
    database, old = tmp_path / "litetask.db", tmp_path / "old.db"
    database_at(old, "0003")
    done = litetask(database, "restore", str(old))  # onto a machine without a database yet
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
    # Its task finished long ago: kept only because retention is off (0).
    server = start_server(free_port, LITETASK_TASK_RETENTION_SECONDS="0")
    response = httpx.get(f"{server.url}/tasks/{TASK_ID}")
    assert response.status_code == 200 and response.json()["result"] == 5
    assert not list(tmp_path.glob("*.pre-migrate-*"))  # migrated by the restore already


def test_migrate_refuses_a_schema_it_does_not_know(tmp_path: Path) -> None:
    database = tmp_path / "litetask.db"
    database_at(database, "head")
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    one_line_error(litetask(database, "migrate"), "revision 9999")


def test_sessions_ended_after_a_backup_stay_ended_after_restoring_it(
    tmp_path: Path, start_server: StartServer, free_port: int
) -> None:
    """Ending sessions bumps a version kept in the database; restoring a backup from before
    must not bring back the older version and with it every session it ended."""
    database, copy = tmp_path / "litetask.db", tmp_path / "copy.db"
    token = "restore-sessions-token-0123456789abcdef"
    server = start_server(free_port, LITETASK_API_TOKEN=token)
    login = httpx.post(f"{server.url}/auth/session", json={"token": token})
    assert login.status_code == 200, login.text
    cookies = dict(login.cookies)
    assert litetask(database, "backup", str(copy)).returncode == 0
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.delete(f"{server.url}/auth/session", headers=bearer).status_code == 204
    assert httpx.get(f"{server.url}/tasks", cookies=cookies).status_code == 401
    server.signal(signal.SIGTERM)
    assert server.wait() == 0

    assert litetask(database, "restore", str(copy)).returncode == 0
    server = start_server(free_port, LITETASK_API_TOKEN=token)
    assert httpx.get(f"{server.url}/tasks", cookies=cookies).status_code == 401
    fresh = httpx.post(f"{server.url}/auth/session", json={"token": token})
    assert httpx.get(f"{server.url}/tasks", cookies=dict(fresh.cookies)).status_code == 200


def epoch_of(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        (value,) = conn.execute(
            "SELECT value FROM service_state WHERE key = 'event_log_epoch'"
        ).fetchone()
        return int(value)


def test_restore_refuses_a_live_owner_even_without_the_lock_file(
    tmp_path: Path, start_server: StartServer, free_port: int
) -> None:
    """The lock file is one proof; the owner row with its heartbeat is the other."""
    server = start_server(free_port)
    database, copy = tmp_path / "litetask.db", tmp_path / "copy.db"
    submit(server.url, 2)
    assert litetask(database, "backup", str(copy)).returncode == 0
    Path(f"{database}.lock").unlink()
    one_line_error(litetask(database, "restore", str(copy)), "stop it first")
    assert len(task_ids(database)) == 2


def test_a_restored_log_gets_a_new_epoch(
    tmp_path: Path, start_server: StartServer, free_port: int
) -> None:
    """Event ids of the restored copy may name other events than clients saw: its log gets
    a new epoch, so resuming SSE clients are told to start over."""
    database, copy = tmp_path / "litetask.db", tmp_path / "copy.db"
    server = start_server(free_port)
    submit(server.url, 2)
    assert litetask(database, "backup", str(copy)).returncode == 0
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    before = epoch_of(database)
    assert epoch_of(copy) == before
    assert litetask(database, "restore", str(copy)).returncode == 0
    assert epoch_of(database) not in (before, 0)
