"""Cache backends behind one interface (`app.cache.adapters.base.CacheAdapter`): memory,
SQLite and Redis, each in its own module, imported only where it is used (so a service on
the SQLite cache never loads the Redis client)."""
