"""Batches: many tasks queued by one call (`add_tasks`, POST /tasks/batch), all or none.

Every task of a batch is checked before anything is written, with the checks one task gets
(its type, its arguments against the function's signature, app/bounds.py for options and
sizes); one bad task fails the batch with TaskBatchError, which lists each bad index. Then
the whole batch is one write (app/worker/accept.py PutTasks): one transaction, ids in order.
At most MAX_BATCH_TASKS tasks per batch, and at most MAX_BATCH_BYTES of args, kwargs and
metadata in all (TaskBatchTooLargeError, raised as soon as the tasks built so far pass it).

`add_tasks` items are of one task type and take one TaskOptions; an item is a tuple (or
list) of positional arguments, a dict of keyword arguments, or an `(args, kwargs)` pair: a
2-tuple of a tuple or list and a dict. (A function whose two positional arguments are a list
and a dict is called with such a pair: `((items, config), {})`.) Every keyword of an item is
an argument of the function; options come only through `options=`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app import bounds
from app.bounds import MAX_BATCH_TASKS
from app.errors import TaskArgumentsError, TaskBatchError, TaskBatchTooLargeError, TaskError
from app.worker.options import TaskOptions
from app.worker.records import NewTask

Item = tuple[Any, ...] | list[Any] | dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaskCall:
    """One task of a batch: what to run, with what, and how."""

    task_type: str
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: TaskOptions = field(default_factory=TaskOptions)


def check_size(count: int) -> None:
    if count > MAX_BATCH_TASKS:
        raise TaskArgumentsError(
            f"a batch takes at most {MAX_BATCH_TASKS} tasks, not {count}; split it"
        )


def calls_of(task_type: str, items: Sequence[Item], options: TaskOptions | None) -> list[TaskCall]:
    """The calls `add_tasks` items stand for; TaskBatchError naming each item of no known
    shape."""
    if isinstance(items, (str, bytes, dict)):
        raise TaskArgumentsError("items must be a list of tasks' arguments")
    check_size(len(items))
    if options is not None and not isinstance(options, TaskOptions):
        raise TaskArgumentsError(f"options must be a TaskOptions, not {type(options).__name__}")
    chosen = options or TaskOptions()
    return each(len(items), lambda i: TaskCall(task_type, *_arguments(items[i]), chosen))


def each(count: int, make: Callable[[int], Any]) -> list[Any]:
    """`make(i)` for every index, all or none: TaskBatchError with every index whose `make`
    raised a TaskError (and why); TaskBatchTooLargeError at once, for the whole batch."""
    made: list[Any] = []
    problems: dict[int, str] = {}
    for index in range(count):
        try:
            made.append(make(index))
        except TaskBatchTooLargeError:
            raise
        except TaskError as exc:
            problems[index] = str(exc)
    if problems:
        raise TaskBatchError(problems)
    return made


def new_tasks(calls: Sequence[TaskCall], build: Callable[[TaskCall], NewTask]) -> list[NewTask]:
    """Every call checked and built (see `each`), the batch's total size with them."""
    check_size(len(calls))
    total = 0

    def built(index: int) -> NewTask:
        nonlocal total
        task = build(calls[index])
        total = bounds.batch_bytes(total, task.args, task.kwargs, task.metadata)
        return task

    return each(len(calls), built)


def _arguments(item: Any) -> tuple[Sequence[Any], dict[str, Any]]:
    if isinstance(item, dict):
        return (), item
    if (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], (tuple, list))
        and isinstance(item[1], dict)
    ):
        return item[0], item[1]
    if isinstance(item, (tuple, list)):
        return item, {}
    raise TaskArgumentsError(
        f"an item is a tuple of arguments, a dict of keyword arguments or an (args, kwargs) "
        f"pair, not {type(item).__name__}"
    )
