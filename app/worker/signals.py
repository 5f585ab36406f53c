"""Signals a task raises to say what happens next: run again later (Retry), or give up
(Abort). They are not failures of the function, and the attempt history says which it was.

- `raise Retry(delay=30)`: run again in 30 s without spending an attempt (Oban's snooze,
  River's JobSnooze). Attempts only grow (the start is counted: each attempt's number fences
  its writes) and `snoozes` counts it; `max_attempts` stays as given (within its bound), and
  what a task has spent of it is `attempts - snoozes` (ClaimedTask.spent). A task may
  snooze MAX_SNOOZES times; a Retry beyond that is an ordinary failed attempt (retried with
  backoff while attempts remain).
- `raise Abort("reason")`: the task fails now, with no further attempt, whatever its
  `max_attempts`.
"""

from __future__ import annotations

from app import bounds

MAX_SNOOZES = bounds.MAX_SNOOZES


class Retry(Exception):
    """Run this task again after `delay` seconds, without spending an attempt."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = bounds.delay(delay)
        super().__init__(f"retry in {self.delay:g} s")


class Abort(Exception):
    """Fail this task now: no further attempt, whatever its max_attempts says."""

    def __init__(self, reason: str = "aborted by the task") -> None:
        self.reason = reason
        super().__init__(reason)
