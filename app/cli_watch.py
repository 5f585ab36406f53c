"""`litetask watch ID`: follow one task live from `GET /tasks/{id}/events` (SSEClient: it
resumes with Last-Event-ID across a restart of the service) until it ends. A progress bar on
a terminal, a line per change in a pipe, each event as one JSON line with --json. Exit
status 0 when the task completed, 1 when it failed or was cancelled (or it cannot be
followed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, Protocol

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from app.cli_api import ApiClient, CliError, auth_headers, problem_line, task_path, unreachable
from app.cli_output import Output, styled, summary
from app.events.client import RetriesExhaustedError, SSEClient, StreamRejectedError
from app.worker.status import TERMINAL, TaskStatus

FINISHED = frozenset(s.value for s in TERMINAL)
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class View(Protocol):
    """Shows a task's state as it changes."""

    def show(self, state: dict[str, Any], event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def watch(args: argparse.Namespace, api: ApiClient, out: Output) -> int:
    task = api.call("GET", task_path(args.task_id))  # one-line errors: 401, 404, down
    state = dict(task)
    view = _view(out, task)
    try:  # a finished task's stream is its snapshot alone
        asyncio.run(_follow(api.url + task_path(task["id"], "events"), state, view))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        view.close()
    if state["status"] not in FINISHED:  # the stream ended first: ask once more
        state = api.call("GET", task_path(task["id"]))
    _outcome(out, state)
    return EXIT_OK if state["status"] == TaskStatus.COMPLETED else EXIT_FAILED


async def _follow(url: str, state: dict[str, Any], view: View) -> None:
    """Apply each event to `state` (the task's JSON shape) until a terminal status."""
    stream = SSEClient(url, headers=auth_headers(), max_retries=5, max_delay=10.0)
    try:
        async with stream:
            async for event in stream:
                _apply(state, event.data)
                view.show(state, event.data)
                if state["status"] in FINISHED:
                    return
    except StreamRejectedError as exc:
        body = str(exc).split(": ", 2)[-1]
        raise CliError(problem_line(exc.status_code, body)) from None
    except RetriesExhaustedError as exc:
        raise unreachable(url, exc) from None


def _apply(state: dict[str, Any], data: dict[str, Any]) -> None:
    """Only state changes carry a status; a progress event moves the bar alone."""
    if data.get("status"):
        state["status"] = data["status"]
    if data.get("progress") is not None:
        state["progress"] = data["progress"]
    if data.get("attempt") is not None:
        state["attempts"] = data["attempt"]
    for name in ("result", "error"):
        if name in data:
            state[name] = data[name]


def _outcome(out: Output, state: dict[str, Any]) -> None:
    if out.as_json:
        return
    status, detail = state["status"], summary(state, 200)
    text = f"{status}: {detail}" if detail else status
    out.line(text, f"{styled(status)} {detail}" if detail else styled(status))


def _view(out: Output, task: dict[str, Any]) -> View:
    if out.as_json:
        return JsonView()
    if out.rich:
        return BarView(out, task)
    return LineView(out)


class JsonView:
    """Each event's data as one JSON line (the snapshot first)."""

    def show(self, state: dict[str, Any], event: dict[str, Any]) -> None:
        print(json.dumps(event, ensure_ascii=False), flush=True)

    def close(self) -> None:
        pass


class LineView:
    """A line `<status> <percent>%` whenever either changes (the end has its own line)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.last: tuple[str, int] | None = None

    def show(self, state: dict[str, Any], event: dict[str, Any]) -> None:
        now = (state["status"], round((state.get("progress") or 0) * 100))
        if now != self.last and now[0] not in FINISHED:
            self.last = now
            self.out.line(f"{now[0]} {now[1]}%")

    def close(self) -> None:
        pass


class BarView:
    """A rich progress bar: task type, status, bar, percent, time elapsed."""

    def __init__(self, out: Output, task: dict[str, Any]) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=out.console,
        )
        self.name = f"{task['task_type']} {task['id'][:8]}"
        self.bar = self.progress.add_task(self._label(task), total=1.0)
        self.progress.start()

    def _label(self, state: dict[str, Any]) -> str:
        return f"{self.name} {styled(state['status'])}"

    def show(self, state: dict[str, Any], event: dict[str, Any]) -> None:
        completed = state.get("progress") or 0.0
        self.progress.update(self.bar, completed=completed, description=self._label(state))

    def close(self) -> None:
        self.progress.stop()
