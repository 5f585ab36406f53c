"""TaskQueue: the durable queue. Every change is a WriteOp committed by the group-commit
writer together with its event rows; nothing about a task lives only in memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Sequence

from app.clock import now_us
from app.db.writer import GroupCommitWriter
from app.worker.accept import PutTask
from app.worker.attempts import FinishTask, SaveProgress
from app.worker.claims import Claim, ClaimRequest, ClaimTasks, StartTasks
from app.worker.control import CancelTask, RetryTask
from app.worker.records import Accepted, ClaimedTask, Failed, NewTask, Outcome
from app.worker.status import TaskInfo, TaskStatus

WAKE_ALWAYS = 2**63
WAKE_NEVER = -1


class TaskQueue:
    """The durable queue: puts, claims and outcomes through the group-commit writer, and an
    `asyncio.Event` that wakes the pool when new work is committed (no polling)."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer
        self.new_work = asyncio.Event()
        # The pool sets this before it sleeps: a new task due before it (µs) wakes the pool;
        # one due later will be found when the pool wakes anyway. WAKE_ALWAYS while idle.
        self.wake_before = WAKE_ALWAYS
        # The earliest run_at (µs) put since the pool last reset it to WAKE_ALWAYS: while it
        # claims (wake_before is WAKE_NEVER then), puts are noted here instead of waking it.
        self.earliest_put = WAKE_ALWAYS
        # The least urgent priority the pool holds claimed ahead (None: it holds none). A put
        # more urgent than that, and due, sets `preempt` and wakes the pool, which gives its
        # prefetch back and claims again, so the new task is not stuck behind it.
        self.ready_floor: int | None = None
        self.preempt = False
        # Set when the pool stops: a claim or start the writer applies after it takes
        # nothing, so no task starts once a stop has begun (read in the writer's thread).
        self.no_new_starts = threading.Event()

    async def put(self, task: NewTask) -> Accepted:
        accepted = await self.writer.run(PutTask(task))
        if accepted.created:
            run_at = task.run_at
            if run_at < self.earliest_put:
                self.earliest_put = run_at
            if run_at < self.wake_before:
                self.new_work.set()
            self._note_urgent(task)
        return accepted

    def _note_urgent(self, task: NewTask) -> None:
        floor = self.ready_floor
        if floor is not None and task.priority < floor and task.run_at <= now_us():
            self.preempt = True
            self.new_work.set()

    async def claim(self, request: ClaimRequest) -> Claim:
        return await self.writer.run(ClaimTasks(request, self.no_new_starts))

    def start(
        self, claimed: Sequence[ClaimedTask], owner: str, lease_seconds: float
    ) -> Awaitable[set[str]]:
        """Mark claimed tasks running; the awaitable gives the ids that started (one op,
        and one future, for all of them)."""
        return self.writer.submit(StartTasks(claimed, owner, lease_seconds, self.no_new_starts))

    async def finish(self, claimed: ClaimedTask, outcome: Outcome) -> bool:
        finished = await self.writer.run(FinishTask(claimed, outcome))
        if isinstance(outcome, Failed) and outcome.retry_at is not None:
            self.new_work.set()
        return finished

    async def cancel(self, task_id: str) -> TaskStatus:
        return await self.writer.run(CancelTask(task_id))

    async def retry(self, task_id: str) -> TaskInfo:
        queued = await self.writer.run(RetryTask(task_id))
        self.new_work.set()
        return queued

    async def save_progress(self, task_id: str, attempt: int, progress: float) -> None:
        await self.writer.run(SaveProgress(task_id, attempt, progress))
