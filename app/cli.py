"""The `litetask` command: serve, migrate, backup, restore, token, submit and status; the
operator's `tasks` and `watch` (app/cli_tasks.py); `move-to-postgres` (app/cli_move.py).

`serve`, `migrate`, `backup` and `restore` read settings from LITETASK_* variables, flags
overriding them;
`submit` and `status` talk to a running server at --url (LITETASK_URL), sending
LITETASK_API_TOKEN as a bearer token when it is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx

from app import cli_move, cli_tasks
from app.access import new_token
from app.cli_api import service_url
from app.config import ConfigError, Settings
from app.env_values import mask_url
from app.errors import TaskError
from app.logs import configure_logging

logger = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SERVICE_UMASK = 0o077  # whatever the service (or a task) creates is its owner's alone


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litetask", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API and the workers (one process)")
    serve.add_argument("--host", help="bind address (LITETASK_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (LITETASK_PORT, default 8000)")
    _database_flag(serve)
    serve.add_argument(
        "--task-module",
        action="append",
        dest="task_modules",
        metavar="MODULE",
        help="import path of a module with @task functions; repeatable "
        "(LITETASK_TASK_MODULES, default none)",
    )
    serve.add_argument(
        "--demo",
        action="store_const",
        const=True,
        help="also load the demo task types, app.demo (LITETASK_DEMO=1)",
    )
    serve.add_argument("--max-workers", type=int, help="concurrent tasks (LITETASK_MAX_WORKERS)")
    _database_flag(commands.add_parser("migrate", help="bring the database schema up to date"))
    backup = commands.add_parser(
        "backup", help="copy the database to PATH, consistent and checked, while it serves"
    )
    backup.add_argument("path", type=Path, help="the backup file to write (replaced if it exists)")
    _database_flag(backup)
    restore = commands.add_parser(
        "restore", help="replace the database by the backup at PATH (stop the service first)"
    )
    restore.add_argument("path", type=Path, help="a file `litetask backup` wrote")
    _database_flag(restore)
    commands.add_parser("token", help="print a fresh random API token for LITETASK_API_TOKEN")
    submit = commands.add_parser("submit", help="submit a task to a running server")
    submit.add_argument("task_type")
    submit.add_argument("--json", default="{}", help="keyword arguments as a JSON object")
    submit.add_argument("--idempotency-key")
    _url_flag(submit)
    status = commands.add_parser("status", help="show a task of a running server")
    status.add_argument("task_id")
    _url_flag(status)
    cli_tasks.add_parsers(commands)
    cli_move.add_parsers(commands)
    return parser


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="SQLAlchemy URL (LITETASK_DATABASE_URL)")


def _url_flag(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("LITETASK_URL", "http://127.0.0.1:8000")
    parser.add_argument("--url", default=default, help=f"server URL (LITETASK_URL, {default})")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, TaskError, OSError) as exc:  # OSError: a backup cannot write
        return failure_code(exc)


def failure_code(exc: Exception) -> int:
    """Say what failed on stderr (one line for what the user can act on, a traceback for
    a bug) and return the exit code."""
    if isinstance(exc, ConfigError):
        print(f"litetask: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, (TaskError, OSError)):
        print(f"litetask: {exc}", file=sys.stderr)
    else:
        traceback.print_exception(exc)
    return EXIT_FAILED


def settings_from(args: argparse.Namespace) -> Settings:
    flags = ("host", "port", "database_url", "task_modules", "max_workers", "demo")
    overrides = {name: getattr(args, name, None) for name in flags}
    if overrides["task_modules"] is not None:
        overrides["task_modules"] = tuple(overrides["task_modules"])
    return Settings.from_env(**overrides)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until stopped: exit 0 after a stop by signal, 1 when it could not start or had
    to stop itself, 128 + the signal's number on a third stop signal (app/shutdown.py)."""
    from app.main import serve
    from app.shutdown import run_service

    settings = settings_from(args)
    configure_logging(settings.log_level, settings.log_format, access_log=settings.access_log)
    logger.debug("settings: %r", settings)  # secrets masked (Settings.__repr__)
    os.umask(SERVICE_UMASK)
    return run_service(lambda stop: serve(settings, stop), _serve_failure_code)


def _serve_failure_code(exc: Exception) -> int:
    from hypercorn.utils import LifespanFailureError

    from app.main import ServeError

    if isinstance(exc, (LifespanFailureError, ServeError)):
        print(f"litetask: could not start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return failure_code(exc)


def run_token(_args: argparse.Namespace) -> int:
    print(new_token())
    return EXIT_OK


async def migrate(database_url: str) -> None:
    """Upgrade the schema to head, holding the database's process lock (so never under a
    running server)."""
    from app.db.engine import create_engines, sqlite_path
    from app.db.lock import ProcessLock
    from app.db.migrate import upgrade
    from app.db.mounts import check_local

    path = sqlite_path(database_url)
    lock = ProcessLock(path) if path is not None else None
    if lock is not None:
        await asyncio.to_thread(check_local, lock.path)
        await lock.acquire()
    try:
        engines = create_engines(database_url)
        try:
            await upgrade(engines.writer)
        finally:
            await engines.dispose()
    finally:
        if lock is not None:
            lock.release()


def run_migrate(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(migrate(settings.database_url))
    print(f"litetask: {mask_url(settings.database_url)} is up to date")
    return EXIT_OK


def database_file(args: argparse.Namespace) -> Path:
    """The SQLite file of the configured database (LITETASK_DATABASE_URL, --database-url)."""
    from app.db.engine import sqlite_path

    path = sqlite_path(settings_from(args).database_url)
    if path is None:
        raise ConfigError(
            "litetask backup and restore copy a SQLite file; for PostgreSQL use pg_dump and "
            "pg_restore (docs/scaling.md)"
        )
    return path


def run_backup(args: argparse.Namespace) -> int:
    from app.db.backup import back_up

    database = database_file(args)
    copy = back_up(database, args.path)
    print(
        f"litetask: backed up {database} to {copy.path} "
        f"({copy.size} bytes, schema revision {copy.revision}, integrity ok)"
    )
    return EXIT_OK


def run_restore(args: argparse.Namespace) -> int:
    from app.db.restore import restore

    restored = asyncio.run(restore(args.path, database_file(args)))
    kept = f"; the database it replaced is kept as {restored.replaced}" if restored.replaced else ""
    print(
        f"litetask: restored {restored.database} from {args.path} "
        f"(schema revision {restored.revision}){kept}"
    )
    return EXIT_OK


def run_submit(args: argparse.Namespace) -> int:
    try:
        kwargs = json.loads(args.json)
    except ValueError as exc:
        print(f"litetask: --json is not valid JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    body = {"task_type": args.task_type, "kwargs": kwargs}
    return _call(args.url, "POST", "/tasks", json=body, headers=headers)


def run_status(args: argparse.Namespace) -> int:
    return _call(args.url, "GET", f"/tasks/{args.task_id}")


def _call(base_url: str, method: str, path: str, **kwargs: Any) -> int:
    """One request; prints the JSON answer (stdout on success, stderr on an error)."""
    base_url = service_url(base_url)
    headers = dict(kwargs.pop("headers", {}))
    token = os.environ.get("LITETASK_API_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.request(method, base_url + path, headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        print(f"litetask: cannot reach {base_url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    out = sys.stdout if response.is_success else sys.stderr
    try:
        print(json.dumps(response.json(), indent=2), file=out)
    except ValueError:
        print(f"{response.status_code} {response.text}", file=out)
    return EXIT_OK if response.is_success else EXIT_FAILED


COMMANDS: Mapping[str, Callable[[argparse.Namespace], int]] = MappingProxyType(
    {
        "serve": run_serve,
        "migrate": run_migrate,
        "backup": run_backup,
        "restore": run_restore,
        "token": run_token,
        "submit": run_submit,
        "status": run_status,
        **cli_tasks.COMMANDS,
        **cli_move.COMMANDS,
    }
)
