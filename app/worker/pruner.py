"""The background pruner: one side task of the service that, every `interval` seconds,
deletes what retention no longer keeps (events, finished tasks, webhook delivery rows), gives
the freed pages back to the filesystem and truncates the WAL when the writer is idle.

Everything goes through the group-commit writer in small transactions (`batch` rows, or
1024 pages, each), so submits and outcomes get in between and a large backlog (the first
start after an upgrade, say) never holds the write lock for long.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from functools import partial

from app.clock import now_us, seconds_to_us
from app.db.space import Checkpoint, give_back_space
from app.db.writer import GroupCommitWriter, run_in_batches
from app.events.retention import Retention, prune_events
from app.worker.retention import WEEK, PruneDeliveries, PruneTasks, TaskRetention

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PrunePolicy:
    """What the pruner keeps and how it works: finished tasks per `tasks`, events per
    `events` (never longer than the shortest task retention: the events of a task that is
    gone would only leave gaps in the log), webhook delivery ids for `webhook_dedupe`
    seconds; `batch` rows per transaction, a round every `interval` seconds, ending with a
    WAL checkpoint unless `checkpoint` is False (Litestream checkpoints itself)."""

    tasks: TaskRetention = field(default_factory=TaskRetention)
    events: Retention = field(default_factory=Retention)
    webhook_dedupe: float = WEEK
    interval: float = 60.0
    batch: int = 500
    checkpoint: bool = True

    def event_retention(self) -> Retention:
        ages = [a for a in (self.events.max_age, self.tasks.shortest()) if a is not None]
        return replace(self.events, max_age=min(ages, default=None), batch=self.batch)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one round did: rows deleted, pages given back, and whether the WAL was
    truncated (None: the writer was busy, so it was left for the next round, or checkpoints
    are off)."""

    tasks: int = 0
    events: int = 0
    deliveries: int = 0
    pages: int = 0
    checkpointed: bool | None = None


class Pruner:
    """Applies a PrunePolicy through `writer`: `prune_once` for one round, `run` as the
    service's side task."""

    def __init__(self, writer: GroupCommitWriter, policy: PrunePolicy) -> None:
        self.writer, self.policy = writer, policy

    async def run(self) -> None:
        """A round every `policy.interval` seconds until cancelled; a failed round is logged
        and tried again next time, it never ends the loop."""
        while True:
            try:
                pruned = await self.prune_once()
            except Exception:
                logger.exception("pruning failed; trying again in %s s", self.policy.interval)
            else:
                if pruned.tasks or pruned.events or pruned.deliveries:
                    logger.info(
                        "pruned %s tasks, %s events and %s webhook deliveries; %s pages given back",
                        pruned.tasks,
                        pruned.events,
                        pruned.deliveries,
                        pruned.pages,
                    )
            await asyncio.sleep(self.policy.interval)

    async def prune_once(self) -> Pruned:
        """One round, every cutoff taken from the same moment."""
        now, batch = now_us(), self.policy.batch
        events = await prune_events(self.writer, self.policy.event_retention(), now)
        tasks = 0
        for status, seconds in self.policy.tasks.kept():
            cutoff = now - seconds_to_us(seconds)
            prune = partial(PruneTasks, status, cutoff, batch)
            tasks += await run_in_batches(self.writer, prune, batch)
        dedupe = now - seconds_to_us(self.policy.webhook_dedupe)
        deliveries = await run_in_batches(
            self.writer, partial(PruneDeliveries, dedupe, batch), batch
        )
        pages = await give_back_space(self.writer)
        checkpointed = await self.writer.run(Checkpoint()) if self.policy.checkpoint else None
        return Pruned(tasks, events, deliveries, pages, checkpointed)
