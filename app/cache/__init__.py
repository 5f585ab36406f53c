"""The result cache: `AsyncCache` (TTL + LRU) over a `CacheAdapter`, and the key functions.

Adapters live in `app.cache.adapters` (imported on demand, so the worker does not pull in
Redis or SQL code just to serialize). docs/cache.md is the how-to.
"""

from app.cache.core import AsyncCache, CacheStats
from app.cache.errors import CacheError, CacheUnavailableError, InvalidCacheKeyError
from app.cache.keys import (
    MAX_KEY_LENGTH,
    CacheKeyContext,
    KeyFunction,
    build_cache_key,
    compose_key_functions,
    default_cache_key,
    extract_key_component,
    key_component,
    key_context,
)
from app.cache.serialization import SerializationError

__all__ = [
    "MAX_KEY_LENGTH",
    "AsyncCache",
    "CacheError",
    "CacheKeyContext",
    "CacheStats",
    "CacheUnavailableError",
    "InvalidCacheKeyError",
    "KeyFunction",
    "SerializationError",
    "build_cache_key",
    "compose_key_functions",
    "default_cache_key",
    "extract_key_component",
    "key_component",
    "key_context",
]
