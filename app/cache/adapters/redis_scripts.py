"""Lua scripts of the Redis cache adapter: each operation is one atomic round trip.

Keys, all under the adapter's prefix P:
  P v:<key>  the entry (a string with a Redis-side PX expiry when it has a TTL)
  P lru      sorted set, member <key>, score = a logical clock tick of its last use
  P exp      sorted set, member <key>, score = expiry in server milliseconds (TTL'd only)
  P clock    the logical clock (INCR), so LRU order never depends on timestamp ties
Redis expires entries by itself; the `exp` index lets a script drop their index members too,
so the entry count (ZCARD lru) stays exact. Entry keys are derived inside the scripts, so in
Redis Cluster the prefix must hold a hash tag (e.g. "{litetask}:cache:").
"""

from __future__ import annotations

# KEYS: lru, exp. ARGV[1]: entry key prefix. Drops index members of expired entries (at most
# 1000 per call, to keep a call short) and returns the server time in ms.
_PURGE_EXPIRED = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function purge_expired(lru, exp, prefix)
  local now = now_ms()
  local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, 1000)
  for _, member in ipairs(gone) do
    redis.call('DEL', prefix .. member)
    redis.call('ZREM', lru, member)
    redis.call('ZREM', exp, member)
  end
  return now
end
"""

# KEYS: entry, lru, exp, clock. ARGV: member. Returns the value or nil.
GET = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return value
"""

# KEYS: entry, lru, exp, clock. ARGV: member, value, ttl ms ("" = none),
# max entries ("" = unbounded), entry key prefix. Returns how many live entries it evicted.
SET = (
    _PURGE_EXPIRED
    + """
local member, ttl, limit, prefix = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local now = purge_expired(KEYS[2], KEYS[3], prefix)
if ttl then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  redis.call('ZADD', KEYS[3], now + ttl, member)
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[3], member)
end
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), member)
local evicted = 0
if limit then
  local excess = redis.call('ZCARD', KEYS[2]) - limit
  if excess > 0 then
    for _, victim in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
      evicted = evicted + redis.call('DEL', prefix .. victim)
      redis.call('ZREM', KEYS[3], victim)
    end
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  end
end
return evicted
"""
)

# KEYS: entry, lru, exp. ARGV: member. Returns 1 when a live entry was deleted, else 0.
DELETE = """
local deleted = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return deleted
"""

# KEYS: lru, exp. ARGV: entry key prefix. Returns the number of live entries.
SIZE = (
    _PURGE_EXPIRED
    + """
purge_expired(KEYS[1], KEYS[2], ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS: lru, exp. ARGV: entry key prefix, batch size. Deletes the entries of the least
# recently used `batch size` index members, with their members, and returns how many members
# remain. Driven by the index, never by a key pattern: it cannot delete a key of another
# cache whose prefix starts with this one's, and, each batch being atomic, a write between
# batches always leaves its entry and its index member together.
CLEAR_BATCH = """
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, member in ipairs(members) do
  redis.call('DEL', ARGV[1] .. member)
  redis.call('ZREM', KEYS[2], member)
end
if #members > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #members - 1)
end
return redis.call('ZCARD', KEYS[1])
"""
