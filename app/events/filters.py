"""Which task events a reader wants: by task id, task type and metadata group, or all."""

from __future__ import annotations

from dataclasses import dataclass

from app.events.log import TaskEvent

# Payload key that carries a task's metadata "group"; the worker copies it into each event.
GROUP_KEY = "group"


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Matches an event when every field that is set equals the event's; no field set matches
    every event. `group` is compared with the event payload's "group" value."""

    task_id: str | None = None
    task_type: str | None = None
    group: str | None = None

    @property
    def is_empty(self) -> bool:
        return self.task_id is None and self.task_type is None and self.group is None

    def matches(self, event: TaskEvent) -> bool:
        return (
            (self.task_id is None or event.task_id == self.task_id)
            and (self.task_type is None or event.task_type == self.task_type)
            and (self.group is None or event.payload.get(GROUP_KEY) == self.group)
        )


ALL_EVENTS = EventFilter()
