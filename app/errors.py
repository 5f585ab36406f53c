"""The TaskError hierarchy: one base with a category, leaves that carry their fields.

It lives below every layer (db, cache, worker, web), so none of them imports another to raise
or catch a domain error.

The docstring of each class is its default message. HTTP maps these to problem+json at the
edge (app/web/errors.py); nothing here knows about HTTP.
"""

from __future__ import annotations

from typing import ClassVar


class TaskError(Exception):
    """A task operation failed."""

    category: ClassVar[str] = "task"

    def __init__(self, message: str | None = None, *, task_id: str | None = None) -> None:
        self.task_id = task_id
        super().__init__(message or (self.__doc__ or "").strip())


class TaskDefinitionError(TaskError):
    """A task type is defined wrongly (not a function, registered twice, or unknown)."""

    category = "definition"


class UnknownTaskTypeError(TaskDefinitionError):
    """No task type of that name is registered."""

    def __init__(self, task_type: str, known: list[str]) -> None:
        self.task_type = task_type
        self.known = known
        listing = ", ".join(known) or "none"
        super().__init__(
            f"unknown task type {task_type!r}: not registered in this process; "
            f"known types: {listing}"
        )


class TaskSerializationError(TaskError):
    """A value cannot be carried by msgpack."""

    category = "serialization"


class TaskExecutionError(TaskError):
    """The task function raised an exception."""

    category = "execution"

    def __init__(
        self,
        message: str | None = None,
        *,
        task_id: str | None = None,
        error_type: str | None = None,
        traceback: str | None = None,
    ) -> None:
        self.error_type = error_type
        self.traceback = traceback
        super().__init__(message, task_id=task_id)


class TaskTimeoutError(TaskError):
    """The task did not finish within its timeout."""

    category = "timeout"


class TaskCancellationError(TaskError):
    """The task was cancelled before it finished."""

    category = "cancellation"


class TaskNotFoundError(TaskError):
    """No task has that id."""

    category = "not_found"


class TaskAlreadyExistsError(TaskError):
    """A task with that id already exists."""

    category = "conflict"


class TaskStateError(TaskError):
    """The task is not in a state that allows this operation."""

    category = "conflict"

    def __init__(self, message: str, *, task_id: str | None = None, status: str) -> None:
        self.status = status
        super().__init__(message, task_id=task_id)


class WorkerNotRunningError(TaskError):
    """The worker is not running; start it first."""

    category = "unavailable"


class AmbiguousWorkerError(TaskError):
    """Several workers run with this task's registry in this process; say which one to use."""

    category = "conflict"


class DatabaseInUseError(TaskError):
    """Another litetask process already owns this database file."""

    category = "unavailable"


class DatabaseLocationError(TaskError):
    """The database file is on a filesystem SQLite cannot share safely (a network or FUSE
    filesystem: WAL needs every process on one host)."""

    category = "unavailable"


class TaskArgumentsError(TaskError):
    """The arguments do not fit the task function's signature, or an option is invalid."""

    category = "invalid_arguments"


class TaskBatchError(TaskArgumentsError):
    """Some tasks of a batch are invalid, so none was queued; `problems` says why, by index."""

    def __init__(self, problems: dict[int, str]) -> None:
        self.problems = dict(sorted(problems.items()))
        listing = "; ".join(f"[{i}] {why}" for i, why in self.problems.items())
        super().__init__(f"{len(problems)} invalid tasks, none queued: {listing}")


class DatabaseUnavailableError(TaskError):
    """The database cannot take writes right now (busy, full, read-only or failing); nothing
    was written. Try again later."""

    category = "unavailable"

    def __init__(self, message: str | None = None, *, reason: str | None = None) -> None:
        self.reason = reason  # what the database said: "SQLITE_FULL", PostgreSQL's "disk_full"
        super().__init__(message)


class WriterFailedError(DatabaseUnavailableError):
    """The database writer stopped after an unexpected error; nothing more can be written
    until the process restarts."""


class OutcomeNotStoredError(TaskError):
    """The outcome of an attempt could not be stored, so the task failed instead."""

    category = "execution"


class InvalidOptionError(TaskArgumentsError):
    """An option (or the arguments, or the metadata) is outside litetask's bounds."""

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"{option} {reason}")


class TaskBatchTooLargeError(InvalidOptionError):
    """A batch's tasks are larger in all than a batch may be, so none was queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            "tasks",
            f"are over {limit} bytes in all (args and kwargs as msgpack, metadata as JSON); "
            "split the batch",
        )


class IdempotencyKeyReusedError(TaskError):
    """The idempotency key was already used for a different request."""

    category = "idempotency_key_reused"


class BackupError(TaskError):
    """A backup (or a restore) could not be completed; nothing was replaced."""

    category = "backup"


class SchemaRevisionError(TaskError):
    """The database's schema revision is not one this version of litetask knows."""

    category = "unavailable"


class MigrationError(TaskError):
    """A schema migration could not be applied; the database was left as it was."""

    category = "unavailable"


class MoveError(TaskError):
    """The database could not be moved to PostgreSQL; nothing was written to the target."""

    category = "move"
