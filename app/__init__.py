"""litetask: durable background tasks in one lightweight ASGI process.

The public API, re-exported from the packages that hold it.
"""

from app.errors import (
    DatabaseInUseError,
    DatabaseLocationError,
    DatabaseUnavailableError,
    IdempotencyKeyReusedError,
    InvalidOptionError,
    OutcomeNotStoredError,
    TaskAlreadyExistsError,
    TaskArgumentsError,
    TaskCancellationError,
    TaskDefinitionError,
    TaskError,
    TaskExecutionError,
    TaskNotFoundError,
    TaskSerializationError,
    TaskStateError,
    TaskTimeoutError,
    UnknownTaskTypeError,
    WorkerNotRunningError,
    WriterFailedError,
)
from app.worker.core import AsyncTaskWorker
from app.worker.registry import (
    TaskRegistry,
    get_all_task_types,
    get_task_function,
    register_task,
    task,
)
from app.worker.status import ACTIVE, TERMINAL, AttemptError, TaskInfo, TaskStatus

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "AsyncTaskWorker",
    "AttemptError",
    "DatabaseInUseError",
    "DatabaseLocationError",
    "DatabaseUnavailableError",
    "IdempotencyKeyReusedError",
    "InvalidOptionError",
    "OutcomeNotStoredError",
    "TaskAlreadyExistsError",
    "TaskArgumentsError",
    "TaskCancellationError",
    "TaskDefinitionError",
    "TaskError",
    "TaskExecutionError",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskRegistry",
    "TaskSerializationError",
    "TaskStateError",
    "TaskStatus",
    "TaskTimeoutError",
    "UnknownTaskTypeError",
    "WorkerNotRunningError",
    "WriterFailedError",
    "get_all_task_types",
    "get_task_function",
    "register_task",
    "task",
]
