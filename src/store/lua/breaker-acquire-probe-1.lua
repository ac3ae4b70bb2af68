--[[
  Takes one half-open probe permit of one open period, if fewer than the
  maximum are held across all instances. Every grant pushes the permits'
  expiry out to this grant's TTL, so permits whose holders crashed lapse
  together at most one TTL after the last grant.

  Input:
    KEYS[1]  permits held in this open period (RedisKeys.breakerProbes): integer counter
    ARGV[1]  the most permits that may be held at once (>= 1)
    ARGV[2]  time to live of the permits (ms)

  Output:
    1  granted
    0  refused: the maximum is held

  Atomic because the check and the increment must be one step: two instances
  both seeing one free permit must not both take it.
]]
local held = redis.call('INCR', KEYS[1])
if held > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
