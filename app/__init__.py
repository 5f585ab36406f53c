"""litetask: durable background tasks in one lightweight ASGI process.

The public API, re-exported from the packages that hold it.
"""

from app.errors import (
    AmbiguousWorkerError,
    DatabaseInUseError,
    DatabaseLocationError,
    DatabaseUnavailableError,
    IdempotencyKeyReusedError,
    InvalidOptionError,
    OutcomeNotStoredError,
    TaskAlreadyExistsError,
    TaskArgumentsError,
    TaskBatchError,
    TaskBatchTooLargeError,
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
from app.worker.context import TaskContext
from app.worker.core import AsyncTaskWorker
from app.worker.handle import ConfiguredTask, TaskHandle
from app.worker.options import TaskOptions
from app.worker.registry import (
    TaskRegistry,
    get_all_task_types,
    get_task_function,
    register_task,
    task,
)
from app.worker.signals import MAX_SNOOZES, Abort, Retry
from app.worker.status import ACTIVE, TERMINAL, AttemptError, AttemptKind, TaskInfo, TaskStatus

__all__ = [
    "ACTIVE",
    "MAX_SNOOZES",
    "TERMINAL",
    "Abort",
    "AmbiguousWorkerError",
    "AsyncTaskWorker",
    "AttemptError",
    "AttemptKind",
    "ConfiguredTask",
    "DatabaseInUseError",
    "DatabaseLocationError",
    "DatabaseUnavailableError",
    "IdempotencyKeyReusedError",
    "InvalidOptionError",
    "OutcomeNotStoredError",
    "Retry",
    "TaskAlreadyExistsError",
    "TaskArgumentsError",
    "TaskBatchError",
    "TaskBatchTooLargeError",
    "TaskCancellationError",
    "TaskContext",
    "TaskDefinitionError",
    "TaskError",
    "TaskExecutionError",
    "TaskHandle",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskOptions",
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
