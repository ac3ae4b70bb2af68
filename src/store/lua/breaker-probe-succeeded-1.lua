--[[
  Counts one probe success in one open period, across all instances.

  Input:
    KEYS[1]  probe successes in this open period (RedisKeys.breakerProbeSuccesses): integer counter
    ARGV[1]  time to live of the count (ms); an abandoned open period's count expires

  Output:
    the number of successes counted so far in this open period, this one included

  Atomic because the increment and the expiry must be one step: a count left
  without a TTL (the caller gone between the two) would never be removed.
]]
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n
