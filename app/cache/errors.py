"""The cache's errors: one base (a TaskError of category "cache") and leaves with fields.

Oversize or unserializable values raise `SerializationError` (app/cache/serialization.py),
the same error the worker raises for arguments and results, so it is not repeated here.
"""

from __future__ import annotations

from app.errors import TaskError


class CacheError(TaskError):
    """A cache operation failed."""

    category = "cache"


class InvalidCacheKeyError(CacheError):
    """A cache key is not a non-empty string (or a key function did not return one)."""

    def __init__(self, message: str | None = None, *, key: object = None) -> None:
        self.key = key
        super().__init__(message)


class CacheUnavailableError(CacheError):
    """The cache backend (the database or the Redis server) could not be reached."""

    def __init__(self, message: str | None = None, *, backend: str) -> None:
        self.backend = backend
        super().__init__(message)
