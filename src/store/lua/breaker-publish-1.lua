--[[
  Publishes a circuit breaker transition unless the stored state wins, then
  announces whichever state stands, so a publisher that lost adopts the winner.

  The rule is supersedes() in src/resilience/breaker-store.ts, written again
  here: never an older epoch, and an isolation is lifted only by a close (the
  admin reset). test/conformance/breaker-store.ts runs both against the same
  sequences. An isolation is kept without expiry: it lasts until a reset.

  Input:
    KEYS[1]  the breaker's state (RedisKeys.breakerState): JSON {id, state, epoch, openUntil}
    ARGV[1]  the new state as JSON, with its id: stored and announced as is
    ARGV[2]  its epoch (ms)
    ARGV[3]  time to live of an open or closed state (ms)
    ARGV[4]  the channel to announce on (RedisKeys.breakerChannel; a channel, not a key)
    ARGV[5]  its state: closed | open | isolated

  Output:
    1  written and announced
    0  the stored state stands; it was announced again instead

  Atomic because instances publish concurrently: a read, compare and write
  from TypeScript could let an older epoch overwrite a newer one, or an
  opening overwrite an isolation that landed between the read and the write.
]]
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, current = pcall(cjson.decode, stored)
  local epoch = ok and type(current) == 'table' and tonumber(current.epoch)
  if epoch and (epoch > tonumber(ARGV[2]) or (current.state == 'isolated' and ARGV[5] ~= 'closed')) then
    redis.call('PUBLISH', ARGV[4], stored)
    return 0
  end
end
if ARGV[5] == 'isolated' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
