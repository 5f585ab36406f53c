"""When a periodic task type runs: a cron expression in a time zone, or every N seconds.

A schedule is a series of *slots*, whole-second UTC instants computed from the definition
alone (never from when a process happened to start), so every process and every restart
agrees on them: a slot's idempotency key names the task that runs it (app/worker/slots.py).
`every=N` slots are the multiples of N seconds since 1970-01-01 UTC (every=3600 runs on the
hour). Cron expressions are evaluated by cronsim: five fields as Debian's cron reads them,
or six with seconds first (`*/15 * * * * *`), in the schedule's time zone, with Debian
cron's daylight-saving rules (a job in a skipped hour runs once, at its end; in a repeated
hour, once).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from app.bounds import MAX_SECONDS
from app.errors import TaskDefinitionError
from app.worker.context import context_parameter

SCHEDULE_OPTIONS = frozenset({"cron", "every", "timezone", "missed"})
MISSED_POLICIES = ("skip", "one", "all")
# The parameter through which a periodic function may receive its slot (an aware UTC
# datetime); a periodic function takes no other argument.
SLOT_PARAMETER = "scheduled_at"
WORKER_GIVEN = frozenset({"progress_callback", SLOT_PARAMETER})
US = 1_000_000


@dataclass(frozen=True, slots=True)
class Schedule:
    """A periodic task type's slots (`cron` in `timezone`, or `every` seconds) and which
    missed slots run after downtime (`missed`: skip, one, all)."""

    cron: str | None
    every: int | None
    timezone: str
    missed: str

    def next_after(self, moment_us: int) -> int | None:
        """The first slot strictly after `moment_us` (None: the expression matches nothing
        in the next 50 years)."""
        if self.every is not None:
            step = self.every * US
            return (moment_us // step + 1) * step
        return next(self._cron_slots(moment_us, reverse=False), None)

    def latest(self, after_us: int, until_us: int, limit: int) -> list[int]:
        """Up to `limit` slots in (after_us, until_us], the latest ones, earliest first."""
        if limit <= 0 or until_us <= after_us:
            return []
        if self.every is not None:
            step = self.every * US
            last = until_us // step * step
            first = max(after_us // step + 1, last // step - limit + 1) * step
            return list(range(first, last + 1, step))
        # Reverse iteration starts strictly before the instant given: 1 µs past until_us.
        found = self._cron_slots(until_us + 1, reverse=True)
        slots = list(islice(takewhile(lambda slot: slot > after_us, found), limit))
        return slots[::-1]

    def _cron_slots(self, moment_us: int, *, reverse: bool) -> Iterator[int]:
        """Slots (µs) strictly after the moment, or strictly before it reversed; they end
        where cronsim finds none for 50 years."""
        assert self.cron is not None
        start = datetime.fromtimestamp(moment_us // US, UTC).replace(microsecond=moment_us % US)
        for moment in CronSim(self.cron, start.astimezone(ZoneInfo(self.timezone)), reverse):
            yield int(moment.timestamp()) * US

    def describe(self) -> str:
        """One line for people: `every 30 s` or `cron 0 * * * * (Europe/Paris)`."""
        if self.every is not None:
            return f"every {self.every} s"
        return f"cron {self.cron} ({self.timezone})"


def schedule_from(name: str, func: Any, options: dict[str, Any]) -> Schedule | None:
    """The schedule that @task/register options define, taken out of `options` (None when
    they define none); TaskDefinitionError when they define it wrongly."""
    given = {key: options.pop(key) for key in SCHEDULE_OPTIONS if key in options}
    if not given:
        return None
    cron, every = given.get("cron"), given.get("every")
    if (cron is None) == (every is None):
        raise TaskDefinitionError(f"periodic task type {name!r}: give cron or every (one of them)")
    timezone = _timezone(name, given.get("timezone"), every is not None)
    missed = given.get("missed", "one")
    if missed not in MISSED_POLICIES:
        raise TaskDefinitionError(
            f"periodic task type {name!r}: missed must be one of {', '.join(MISSED_POLICIES)}, "
            f"not {missed!r}"
        )
    schedule = Schedule(_cron_expression(name, cron), _every(name, every), timezone, missed)
    _check_callable_alone(name, func)
    return schedule


def slot_key(name: str, slot_us: int) -> str:
    """The idempotency key of a slot's task, e.g. `periodic:report:2026-12-02T10:00:00Z`."""
    moment = datetime.fromtimestamp(slot_us // US, UTC)
    return f"periodic:{name}:{moment:%Y-%m-%dT%H:%M:%SZ}"


def _timezone(name: str, value: Any, with_every: bool) -> str:
    if value is None:
        return "UTC"
    if with_every:
        raise TaskDefinitionError(
            f"periodic task type {name!r}: timezone applies to cron only (every=N counts "
            "seconds since 1970-01-01 UTC); use cron for times of day"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TaskDefinitionError(
            f"periodic task type {name!r}: unknown time zone {value!r} (an IANA name such "
            "as 'Europe/Paris')"
        ) from None
    return str(value)


def _cron_expression(name: str, value: Any) -> str | None:
    if value is None:
        return None
    problem = "it must be a string" if not isinstance(value, str) else _cron_problem(value)
    if problem is not None:
        raise TaskDefinitionError(
            f"periodic task type {name!r}: invalid cron expression {value!r}: {problem} "
            "(five fields, or six with seconds first)"
        )
    return " ".join(value.split())


def _cron_problem(expression: str) -> str | None:
    """What is wrong with a cron expression, or None. One that matches nothing within 50
    years (30 February) is wrong too."""
    try:
        if next(CronSim(expression, datetime.now(UTC)), None) is None:
            return "it matches no time within 50 years"
    except CronSimError as exc:
        return str(exc) or "not a cron expression"
    return None


def _every(name: str, value: Any) -> int | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    whole = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not whole or seconds != int(seconds) or not 1 <= seconds <= MAX_SECONDS:
        raise TaskDefinitionError(
            f"periodic task type {name!r}: every must be a whole number of seconds from 1 to "
            f"{MAX_SECONDS:.0f} (or a timedelta of one), not {value!r}"
        )
    return int(seconds)


def _check_callable_alone(name: str, func: Any) -> None:
    """A periodic function is called with no argument (but `scheduled_at` when it declares
    it, and what the worker gives: `progress_callback`, the task context)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return  # registration reports a function it cannot inspect
    given = {p: None for p in WORKER_GIVEN if p in signature.parameters}
    context = context_parameter(func, signature)
    if context is not None:
        given[context] = None
    try:
        signature.bind(**given)
    except TypeError as exc:
        raise TaskDefinitionError(
            f"periodic task type {name!r} is called without arguments (its slot comes as "
            f"`{SLOT_PARAMETER}` when it declares it), so {exc}"
        ) from None
