"""The pool's prefetch: tasks claimed ahead of free slots, best first.

A heap on the claim order (priority, run_at, seq), so rows claimed later but more urgent
start before older, less urgent ones. `worst_priority` lets the queue notice a new task more
urgent than anything held here: the pool then gives the prefetch back and claims again.
"""

from __future__ import annotations

import heapq

from app.worker.records import ClaimedTask

_Entry = tuple[int, int, int, ClaimedTask]


class ReadyTasks:
    def __init__(self) -> None:
        self._heap: list[_Entry] = []

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def extend(self, claimed: list[ClaimedTask]) -> None:
        for c in claimed:
            heapq.heappush(self._heap, (c.priority, c.run_at, c.seq, c))

    def pop(self) -> ClaimedTask:
        return heapq.heappop(self._heap)[3]

    def remove(self, task_id: str) -> bool:
        """Drop the task (cancelled while claimed); False when it is not held here."""
        kept = [entry for entry in self._heap if entry[3].id != task_id]
        if len(kept) == len(self._heap):
            return False
        heapq.heapify(kept)
        self._heap = kept
        return True

    def drain(self) -> list[ClaimedTask]:
        tasks = [entry[3] for entry in self._heap]
        self._heap = []
        return tasks

    def tasks(self) -> list[ClaimedTask]:
        return [entry[3] for entry in self._heap]

    def worst_priority(self) -> int | None:
        """The largest priority number held (the least urgent), None when empty."""
        return max((entry[0] for entry in self._heap), default=None)
