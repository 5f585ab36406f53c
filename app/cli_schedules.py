"""`litetask schedules`: the periodic task types of a running service (GET /schedules), each
with its schedule, its last run and its next, as `litetask tasks list` prints tasks: a table
on a terminal, tab-separated lines in a pipe, the API's JSON with --json."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from app.cli_api import ApiClient
from app.cli_output import Output, age, styled

EXIT_OK = 0


def list_schedules(_args: argparse.Namespace, api: ApiClient, out: Output) -> int:
    found: list[dict[str, Any]] = api.call("GET", "/schedules")["schedules"]
    if out.as_json:
        out.json(found)
    elif out.rich:
        out.console.print(schedule_table(found))
    else:
        for schedule in found:
            print("\t".join(plain_fields(schedule)), file=out.stream, flush=True)
    return EXIT_OK


def describe(schedule: dict[str, Any]) -> str:
    """`every 30 s`, or `cron 0 * * * * (Europe/Paris)`."""
    if schedule.get("every") is not None:
        return f"every {schedule['every']} s"
    return f"cron {schedule.get('cron')} ({schedule.get('timezone')})"


def plain_fields(schedule: dict[str, Any]) -> list[str]:
    """Name, schedule, missed policy, last run, its task's status, next run (times ISO 8601;
    empty when there is none)."""
    return [
        schedule["name"],
        describe(schedule),
        schedule.get("missed") or "",
        schedule.get("last_run") or "",
        schedule.get("last_status") or "",
        schedule.get("next_run") or "",
    ]


def schedule_table(schedules: list[dict[str, Any]]) -> Table:
    now = datetime.now(UTC)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for header in ("NAME", "SCHEDULE", "MISSED", "LAST RUN", "STATUS", "NEXT RUN"):
        table.add_column(header, no_wrap=True)
    for schedule in schedules:
        last, status = schedule.get("last_run"), schedule.get("last_status")
        table.add_row(
            escape(schedule["name"]),
            escape(describe(schedule)),
            escape(schedule.get("missed") or ""),
            f"{age(last, now)} ago" if last else "[dim]never[/]",
            styled(status) if status else "",
            _ahead(schedule.get("next_run"), now),
        )
    if not schedules:
        table.caption = "no periodic task types"
    return table


def _ahead(iso: str | None, now: datetime) -> str:
    """How far ahead `iso` is: in 42s, in 7m..."""
    if not iso:
        return "[dim]none[/]"
    return f"in {age(now.isoformat(), datetime.fromisoformat(iso))}"
