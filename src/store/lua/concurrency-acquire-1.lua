--[[
  Takes one in-flight slot of a subject (a key...) if fewer than the maximum
  are held across all instances. A slot is a lease: a member of a sorted set
  scored by when it lapses, so the slots of an instance that crashed without
  releasing them free themselves. Time is Redis's own clock.

  Input:
    KEYS[1]  the subject's leases (RedisKeys.concurrencyLeases): sorted set of lease id -> lapses at (ms)
    ARGV[1]  the most slots held at once (>= 1)
    ARGV[2]  this lease's id
    ARGV[3]  how long the lease lasts unless released (ms)

  Output:
    { granted (1 or 0), slots held after the call }

  Atomic because the count and the take must be one step: instances taking
  the last free slot at once must not both get it.
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return { 0, held } end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
redis.call('PEXPIRE', KEYS[1], lease)
return { 1, held + 1 }
