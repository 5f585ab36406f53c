"""What the operator CLI prints: tables and panels (rich) on a terminal, plain lines when
stdout is not one (tab-separated, no colour, no header, as `gh` does for scripts), or the
API's JSON with --json.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

SUMMARY_CHARS = 80
MIN_SUMMARY = 8
STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
    "running": "blue",
    "pending": "yellow",
    "claimed": "yellow",
}


def summary(task: dict[str, Any], limit: int = SUMMARY_CHARS) -> str:
    """The result (when completed) or the error, on one line, cut to `limit` characters."""
    if task.get("status") == "completed":
        text = json.dumps(task.get("result"), ensure_ascii=False)
    else:
        text = task.get("error") or ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def age(iso: str | None, now: datetime) -> str:
    """How long ago `iso` was, as kubectl shows it: 42s, 7m, 3h, 12d."""
    try:
        seconds = max(0, int((now - datetime.fromisoformat(iso or "")).total_seconds()))
    except ValueError:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def spent(task: dict[str, Any]) -> int:
    """Attempts that count against max_attempts: a snooze (`raise Retry`) spends none."""
    return int(task.get("attempts") or 0) - int(task.get("snoozes") or 0)


def attempts_of(task: dict[str, Any]) -> str:
    return f"{spent(task)}/{task.get('max_attempts') or '?'}"


def styled(status: str) -> str:
    style = STATUS_STYLES.get(status)
    return f"[{style}]{escape(status)}[/]" if style else escape(status)


class Output:
    """One command's output: rich on a terminal, plain lines otherwise, or JSON."""

    def __init__(self, as_json: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.as_json = as_json
        self.rich = not as_json and self.stream.isatty()
        self.console = Console(file=self.stream, highlight=False, force_terminal=self.rich)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, ensure_ascii=False), file=self.stream)

    def line(self, text: str, markup: str | None = None) -> None:
        """`text` as it is, or `markup` (rich markup) on a terminal when given."""
        if self.rich and markup is not None:
            self.console.print(markup)
        else:
            print(text, file=self.stream, flush=True)

    def tasks(self, tasks: list[dict[str, Any]]) -> None:
        if self.as_json:
            self.json(tasks)
        elif self.rich:
            self.console.print(task_table(tasks, self.console.width))
        else:
            for task in tasks:
                fields = [task["id"], task["task_type"], task["status"], attempts_of(task)]
                fields += [task.get("created_at") or "", summary(task)]
                print("\t".join(fields), file=self.stream)

    def task(self, task: dict[str, Any]) -> None:
        """Every field worth reading, then each attempt's error with its traceback."""
        if self.as_json:
            self.json(task)
            return
        if self.rich:
            self.console.print(detail_table(task))
        else:
            for name, value in detail_rows(task):
                print(f"{name}: {value}", file=self.stream)
        for error in task.get("errors") or []:
            self._attempt(error, task.get("max_attempts"))

    def _attempt(self, error: dict[str, Any], max_attempts: int | None) -> None:
        title = (
            f"attempt {error['attempt']} of {max_attempts or '?'} failed at {error['failed_at']}: "
            f"{error['error_type']}: {error['message']}"
        )
        traceback = (error.get("traceback") or "").rstrip()
        if self.rich:
            body = escape(traceback) if traceback else "[dim](no traceback)[/]"
            self.console.print(Panel(body, title=escape(title), title_align="left", style="red"))
            return
        print(f"\n{title}", file=self.stream)
        for line in traceback.splitlines():
            print(f"  {line}", file=self.stream)


def task_table(tasks: list[dict[str, Any]], width: int) -> Table:
    """The tasks, one a row; the result or error gets the width the other columns leave
    (and is left out below MIN_SUMMARY characters), so a row never wraps."""
    now = datetime.now(UTC)
    rows = [
        [
            task["id"],
            task["task_type"],
            task["status"],
            attempts_of(task),
            age(task.get("created_at"), now),
        ]
        for task in tasks
    ]
    headers = ["ID", "TYPE", "STATUS", "ATTEMPTS", "AGE"]
    used = sum(max(len(c) for c in column) + 2 for column in zip(headers, *rows, strict=False))
    room = width - used
    table = Table(box=None, header_style="bold", pad_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True)
    if room >= MIN_SUMMARY:
        table.add_column("RESULT / ERROR", no_wrap=True)
    for row, task in zip(rows, tasks, strict=True):
        cells = [escape(row[0]), escape(row[1]), styled(row[2]), row[3], row[4]]
        if room >= MIN_SUMMARY:
            cells.append(escape(summary(task, room)))
        table.add_row(*cells)
    if not tasks:
        table.caption = "no tasks match"
    return table


def detail_rows(task: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("id", task["id"]),
        ("type", task["task_type"]),
        ("status", task["status"]),
        ("progress", f"{round((task.get('progress') or 0) * 100)}%"),
        ("attempts", f"{spent(task)} of at most {task.get('max_attempts')}"),
        ("snoozes", str(task.get("snoozes") or 0)),
        ("created", task.get("created_at") or ""),
        ("run at", task.get("run_at") or ""),
        ("started", task.get("started_at") or ""),
        ("finished", task.get("completed_at") or ""),
        ("args", json.dumps(task.get("args"), ensure_ascii=False)),
        ("kwargs", json.dumps(task.get("kwargs"), ensure_ascii=False)),
    ]
    if task.get("status") == "completed":
        rows.append(("result", json.dumps(task.get("result"), ensure_ascii=False)))
    if task.get("error"):
        rows.append(("error", task["error"]))
    return rows


def detail_table(task: dict[str, Any]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in detail_rows(task):
        table.add_row(name, styled(value) if name == "status" else escape(value))
    return table
