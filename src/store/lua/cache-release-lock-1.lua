--[[
  Releases a response-cache lock, but only the holder's own: a lock that
  lapsed and was taken by another instance is left alone.

  Input:
    KEYS[1]  the lock (RedisKeys.cacheLock): string, the holder's token
    ARGV[1]  the releasing holder's token

  Output:
    1  released; 0  not held by this token (lapsed or someone else's)

  Atomic because the compare and the delete must be one step.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
