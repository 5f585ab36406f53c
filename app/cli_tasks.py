"""`litetask tasks ...` and `litetask watch`: the operator CLI over a running service's HTTP
API (--url or LITETASK_URL; the token from LITETASK_API_TOKEN), in the style of `gh` and
`fly`: tables on a terminal, plain lines in a pipe, --json for scripts. Every failure is one
line on stderr and exit status 1 (2 for a usage mistake); docs/operations.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from app.cli_api import ApiClient, CliError, service_url, task_path
from app.cli_output import Output
from app.cli_schedules import list_schedules
from app.worker.status import TaskStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_LIMIT = 50
Handler = Callable[[argparse.Namespace, ApiClient, Output], int]


def add_parsers(commands: Any) -> None:
    """Add `tasks` (list, show, cancel, retry), `watch` and `schedules` to the `litetask`
    parser."""
    group = commands.add_parser("tasks", help="list, show, cancel and retry a service's tasks")
    tasks = group.add_subparsers(dest="tasks_command", required=True, metavar="COMMAND")
    listing = _command(tasks, "list", "the newest tasks, filtered", task_id=None)
    statuses = ", ".join(s.value for s in TaskStatus)
    listing.add_argument(
        "--status", action="append", help=f"only tasks in this status (repeatable): {statuses}"
    )
    listing.add_argument("--type", dest="task_type", help="only tasks of this task type")
    listing.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="at most N (1-1000)")
    _command(tasks, "show", "one task: its fields and every attempt's error and traceback")
    _command(tasks, "cancel", "cancel a pending or running task")
    retry = _command(tasks, "retry", "queue a failed or cancelled task again", task_id="?")
    retry.add_argument(
        "--all-failed", action="store_true", help="retry every failed task (instead of an ID)"
    )
    retry.add_argument("--type", dest="task_type", help="with --all-failed: of this type only")
    _command(commands, "watch", "follow a task live until it ends (exit 0 when it completed)")
    help_text = "the periodic task types, with their last and next run"
    _command(commands, "schedules", help_text, task_id=None)


def _command(
    parent: Any, name: str, help_text: str, *, task_id: str | None = "1"
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
    if task_id is not None:
        parser.add_argument("task_id", metavar="ID", nargs=None if task_id == "1" else task_id)
    parser.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    parser.add_argument("--url", help="the service (LITETASK_URL, default http://127.0.0.1:8000)")
    return parser


def run_tasks(args: argparse.Namespace) -> int:
    return run(TASK_COMMANDS[args.tasks_command], args)


def run_watch(args: argparse.Namespace) -> int:
    from app.cli_watch import watch

    return run(watch, args)


def run_schedules(args: argparse.Namespace) -> int:
    return run(list_schedules, args)


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command; a CliError is one line on stderr and exit status 1."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request
    output = Output(as_json=args.json)
    try:
        with ApiClient(service_url(args.url)) as api:
            return handler(args, api, output)
    except CliError as exc:
        print(f"litetask: {exc}", file=sys.stderr)
        return EXIT_FAILED


def list_tasks(args: argparse.Namespace, api: ApiClient, out: Output) -> int:
    params = [("limit", str(args.limit))] + [("status", s) for s in args.status or []]
    if args.task_type:
        params.append(("task_type", args.task_type))
    out.tasks(api.call("GET", "/tasks", params=params)["tasks"])
    return EXIT_OK


def show_task(args: argparse.Namespace, api: ApiClient, out: Output) -> int:
    out.task(api.call("GET", task_path(args.task_id)))
    return EXIT_OK


def cancel_task(args: argparse.Namespace, api: ApiClient, out: Output) -> int:
    task = api.call("DELETE", task_path(args.task_id))
    if out.as_json:
        out.json(task)
    else:
        out.line(f"cancelled {task['id']}", f"[dim]cancelled[/] {task['id']}")
    return EXIT_OK


def retry_task(args: argparse.Namespace, api: ApiClient, out: Output) -> int:
    if (args.task_id is None) == (not args.all_failed) or (args.task_type and not args.all_failed):
        print("litetask: tasks retry: give a task ID, or --all-failed [--type T]", file=sys.stderr)
        return EXIT_USAGE
    if args.all_failed:
        return retry_all_failed(args.task_type, api, out)
    task = api.call("POST", task_path(args.task_id, "retry"))
    if out.as_json:
        out.json(task)
    else:
        again = f"queued {task['id']} again (attempt {task['attempts'] + 1} of at most "
        out.line(again + f"{task['max_attempts']})")
    return EXIT_OK


def retry_all_failed(task_type: str | None, api: ApiClient, out: Output) -> int:
    """POST /tasks/retry page by page, following the cursor: each failed task that exists
    now is retried once, even if it fails again before the pass ends."""
    body: dict[str, Any] = {"status": "failed"}
    if task_type:
        body["task_type"] = task_type
    done: list[dict[str, Any]] = []
    while True:
        answer = api.call("POST", "/tasks/retry", body=body)
        done += answer["tasks"]
        for item in answer["tasks"] if not out.as_json else []:
            detail = f": {item['detail']}" if item.get("detail") else ""
            out.line(f"{item['outcome']} {item['id']}{detail}")
        if answer["next_cursor"] is None:
            break
        body["cursor"] = answer["next_cursor"]
    counts = {name: sum(t["outcome"] == name for t in done) for name in ("retried", "skipped")}
    if out.as_json:
        out.json({"tasks": done, "counts": counts})
    else:
        out.line(f"retried {counts['retried']} failed tasks, skipped {counts['skipped']}")
    return EXIT_OK


TASK_COMMANDS: Mapping[str, Handler] = MappingProxyType(
    {"list": list_tasks, "show": show_task, "cancel": cancel_task, "retry": retry_task}
)
COMMANDS: Mapping[str, Callable[[argparse.Namespace], int]] = MappingProxyType(
    {"tasks": run_tasks, "watch": run_watch, "schedules": run_schedules}
)
