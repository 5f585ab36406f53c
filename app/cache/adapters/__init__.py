"""Cache backends behind one interface (`CacheAdapter`): memory, SQLite and Redis."""

from app.cache.adapters.base import CacheAdapter
from app.cache.adapters.memory import MemoryCacheAdapter
from app.cache.adapters.redis import RedisCacheAdapter
from app.cache.adapters.sqlite import SQLiteCacheAdapter

__all__ = ["CacheAdapter", "MemoryCacheAdapter", "RedisCacheAdapter", "SQLiteCacheAdapter"]
