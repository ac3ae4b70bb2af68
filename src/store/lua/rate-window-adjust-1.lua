--[[
  Corrects what one bucket of one rule counted, once the real cost is known
  (a request admitted on its estimated tokens that used more or fewer). A
  bucket that has already left the window (and been deleted) is not brought
  back: nothing it held counts any more.

  Input:
    KEYS[1]  the subject's windows (RedisKeys.rateWindows): hash of `<rule>:<bucket>` -> count
    ARGV[1]  the field, `<rule id>:<bucket index>`
    ARGV[2]  the correction (an integer, negative to give back)

  Output:
    the bucket's count after the correction, or -1 when the bucket is gone

  Atomic because the existence check and the increment must be one step: a
  plain HINCRBY on a bucket deleted in between would bring it back.
]]
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if count < 0 then
  redis.call('HSET', KEYS[1], ARGV[1], 0)
  return 0
end
return count
