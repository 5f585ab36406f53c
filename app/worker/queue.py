"""TaskQueue: the durable queue. Every change is a WriteOp committed by the group-commit
writer together with its event rows; nothing about a task lives only in memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Sequence

from app.clock import now_us
from app.db.writer import GroupCommitWriter
from app.worker.accept import PutTask, PutTasks
from app.worker.attempts import FinishTask, SaveProgress
from app.worker.claims import Claim, ClaimRequest, ClaimTasks, StartTasks
from app.worker.control import CancelTask, RetryTask
from app.worker.records import Accepted, ClaimedTask, Failed, NewTask, Outcome
from app.worker.status import TaskInfo, TaskStatus

WAKE_ALWAYS = 2**63
WAKE_NEVER = -1


class TaskQueue:
    """The durable queue: puts, claims and outcomes through the group-commit writer, and
    `asyncio.Event`s that wake the pool when due work is committed and the stager when a task
    for later is (no polling)."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer
        self.new_work = asyncio.Event()
        # WAKE_ALWAYS while the pool sleeps (a due put wakes it), WAKE_NEVER while it claims
        # (puts are noted in earliest_put instead, and it claims again after).
        self.wake_before = WAKE_ALWAYS
        # The earliest run_at (µs) put since the pool last reset it to WAKE_ALWAYS: while it
        # claims (wake_before is WAKE_NEVER then), puts are noted here instead of waking it.
        self.earliest_put = WAKE_ALWAYS
        # The least urgent priority the pool holds claimed ahead (None: it holds none). A put
        # more urgent than that, and due, sets `preempt` and wakes the pool, which gives its
        # prefetch back and claims again, so the new task is not stuck behind it.
        self.ready_floor: int | None = None
        self.preempt = False
        # The stager sleeps until stage_at (µs), the earliest scheduled time it knows of; a
        # task for earlier lowers it and sets stage_wake. 0: look at once (at start).
        self.stage_at = 0
        self.stage_wake = asyncio.Event()
        # Set when the pool stops: a claim or start the writer applies after it takes
        # nothing, so no task starts once a stop has begun (read in the writer's thread).
        self.no_new_starts = threading.Event()

    async def put(self, task: NewTask) -> Accepted:
        accepted = await self.writer.run(PutTask(task))
        self._announce(accepted)
        return accepted

    async def put_many(self, new: Sequence[NewTask]) -> list[Accepted]:
        """Every task in one transaction, or none (see PutTasks); in order."""
        accepted = await self.writer.run(PutTasks(new))
        for one in accepted:
            self._announce(one)
        return accepted

    def _announce(self, accepted: Accepted) -> None:
        """Wake the pool (or the stager, for later) for a task just created."""
        if accepted.created and accepted.task is not None:
            self.accepted(accepted.task)

    def accepted(self, task: NewTask) -> None:
        """A new task is committed: the stager wakes by its time (for later), or the pool
        now (due)."""
        if task.status is TaskStatus.SCHEDULED:
            self.schedule(task.run_at)
            return
        if task.run_at < self.earliest_put:
            self.earliest_put = task.run_at
        if task.run_at < self.wake_before:
            self.new_work.set()
        self.became_due(task.priority)

    def schedule(self, run_at: int) -> None:
        """A task waits for `run_at` as scheduled: the stager wakes by then."""
        if run_at < self.stage_at:
            self.stage_at = run_at
            self.stage_wake.set()

    def became_due(self, priority: int) -> None:
        """Tasks of this (best) priority became pending. More urgent than what the pool holds
        claimed ahead, they make it give that back and claim again (waking it), so they are
        not stuck behind it."""
        floor = self.ready_floor
        if floor is not None and priority < floor:
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
        if isinstance(outcome, Failed) and outcome.retry_at is not None and finished:
            if outcome.retry_at > now_us():
                self.schedule(outcome.retry_at)
            else:
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
