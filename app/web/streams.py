"""How many event streams may be open, and for how long.

Every SSE stream holds a connection, a subscriber queue and a task, so they are counted: at
most `max_streams` in all and `per_client` per client address (the ASGI scope's client,
which trusted proxy headers may set); one more is refused with 503 and Retry-After. A stream
gives its slot back when its response ends, however it ends.

A stream also ends itself after `lifetime` seconds. Its client sends nothing after the
request, so Hypercorn's read timeout (LITETASK_READ_TIMEOUT) would otherwise cut it off
mid-chunk; ending first, cleanly, lets EventSource and SSEClient reconnect with
Last-Event-ID and miss nothing.

A quiet filtered stream sends a cursor (its position in the log) at most every
`cursor_interval` seconds while the log moves (LITETASK_SSE_CURSOR_INTERVAL), so its client
resumes from there, not from the last event it happened to match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.config import Settings

LIFETIME_MARGIN = 5.0  # seconds a stream ends before the read timeout would cut it
RETRY_AFTER_SECONDS = 5
CURSOR_INTERVAL = 15.0


def stream_lifetime(read_timeout: float) -> float:
    """Seconds a stream may last: well before the read timeout, at least half of it."""
    return max(read_timeout - LIFETIME_MARGIN, read_timeout / 2)


@dataclass(slots=True)
class StreamLimits:
    """Counts of open streams per client address; one per app, built in its lifespan."""

    max_streams: int = 1000
    per_client: int = 32
    lifetime: float | None = None
    cursor_interval: float | None = CURSOR_INTERVAL
    retry_after: int = RETRY_AFTER_SECONDS
    _open: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _total: int = field(default=0, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamLimits:
        return cls(
            settings.sse_max_streams,
            settings.sse_max_streams_per_client,
            stream_lifetime(settings.read_timeout),
            settings.sse_cursor_interval,
        )

    @property
    def open_streams(self) -> int:
        return self._total

    def take(self, client: str) -> str | None:
        """Count one more stream of `client`; when full, why (naming the setting) instead.
        The per-client map holds only addresses with open streams, so it stays bounded."""
        held = self._open.get(client, 0)
        if held >= self.per_client:
            return (
                f"this address has {held} event streams open (LITETASK_SSE_MAX_STREAMS_PER_CLIENT)"
            )
        if self._total >= self.max_streams:
            return f"{self._total} event streams are open (LITETASK_SSE_MAX_STREAMS)"
        self._open[client] = held + 1
        self._total += 1
        return None

    def give_back(self, client: str) -> None:
        held = self._open.pop(client, 0)
        if held > 1:
            self._open[client] = held - 1
        self._total -= min(held, 1)
