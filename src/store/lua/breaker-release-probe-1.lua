--[[
  Gives back one half-open probe permit of one open period. A permit that
  already lapsed (the counter expired) is not given back twice: the count
  never goes below zero, and a missing counter stays missing.

  Input:
    KEYS[1]  permits held in this open period (RedisKeys.breakerProbes): integer counter

  Output:
    1  always

  Atomic because the read and the decrement must be one step: two releases
  racing a lapse must not leave a negative count, which would admit extra probes.
]]
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held > 0 then redis.call('DECR', KEYS[1]) end
return 1
