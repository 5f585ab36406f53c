"""TaskContext: what a running task may know of its own attempt, and ask of the worker.

A task function receives one when it declares a parameter named `context`, or one annotated
`TaskContext` (under any name). The same object serves `async def` tasks on the event loop
and plain `def` tasks in a worker thread: `progress` is safe to call from either, and
`cancelled` is a flag the worker sets from the loop and the thread may read at any time.
"""

from __future__ import annotations

import inspect
import re
import threading
import typing
from collections.abc import Callable
from typing import Any

CONTEXT_NAME = "context"
_ANNOTATION_TEXT = re.compile(r"(?<![\w.])(?:[\w.]+\.)?TaskContext\b")


class TaskContext:
    """One attempt of one task, as its function sees it."""

    __slots__ = ("_cancelled", "_progress", "attempt", "max_attempts", "metadata", "task_id")

    def __init__(
        self,
        task_id: str,
        attempt: int,
        max_attempts: int,
        metadata: dict[str, Any],
        progress: Callable[[float], None],
    ) -> None:
        self.task_id, self.attempt, self.max_attempts = task_id, attempt, max_attempts
        self.metadata = metadata
        self._progress = progress
        self._cancelled = threading.Event()

    def progress(self, value: float) -> None:
        """Report progress, a number from 0 to 1 (the same as `progress_callback`)."""
        self._progress(value)

    @property
    def cancelled(self) -> bool:
        """True once this attempt is over for the worker: cancelled, timed out, or the worker
        is stopping. A thread cannot be killed, so a `def` task should look at it between
        steps and return; an `async def` task also receives CancelledError."""
        return self._cancelled.is_set()

    def end_attempt(self) -> None:
        """Set `cancelled`: the worker does when the attempt ends without the function."""
        self._cancelled.set()

    def __repr__(self) -> str:
        return (
            f"TaskContext(task_id={self.task_id!r}, attempt={self.attempt}, "
            f"max_attempts={self.max_attempts}, cancelled={self.cancelled})"
        )


def context_parameter(func: Callable[..., Any], signature: inspect.Signature) -> str | None:
    """The name of the parameter that receives the TaskContext, if the function has one: the
    one annotated TaskContext (a string annotation, as `from __future__ import annotations`
    leaves it, counts), else one named `context`."""
    hints = _hints(func)
    for parameter in signature.parameters.values():
        annotation = hints.get(parameter.name, parameter.annotation)
        if _names_context(annotation):
            return parameter.name
    return CONTEXT_NAME if CONTEXT_NAME in signature.parameters else None


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # an annotation that cannot be evaluated: read the text instead
        return {}


def _names_context(annotation: Any) -> bool:
    if annotation is TaskContext:
        return True
    if isinstance(annotation, str):
        return _ANNOTATION_TEXT.search(annotation) is not None
    return any(_names_context(arg) for arg in typing.get_args(annotation))
