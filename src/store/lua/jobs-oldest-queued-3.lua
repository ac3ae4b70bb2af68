--[[
  The creation time of the oldest job a BullMQ queue holds queued
  (src/jobs/bullmq-job-queue.ts, `counts`). Queued jobs sit in three places
  with three orders (the wait list in arrival order but with stalled jobs
  pushed to its front, prioritized by priority, delayed by due time), so
  every one is read: O(queued jobs), for dashboards and metrics, not a hot path.

  Input:
    KEYS[1]  the queue's wait list (BullMQ `wait`)
    KEYS[2]  the queue's prioritized jobs (BullMQ `prioritized`): sorted set
    KEYS[3]  the queue's delayed jobs (BullMQ `delayed`): sorted set
    ARGV[1]  the prefix of the queue's job hashes (BullMQ `<prefix>:<queue>:`)

  Output:
    the smallest `timestamp` field (epoch ms) among those jobs, or -1 when there is none

  Atomic because the ids and their timestamps must come from one moment (a
  job moving between the three while they are read would be missed), and it
  is one round trip instead of one per job.
]]
local oldest = -1
local function consider(ids)
  for _, id in ipairs(ids) do
    local created = tonumber(redis.call('HGET', ARGV[1] .. id, 'timestamp'))
    if created and (oldest < 0 or created < oldest) then
      oldest = created
    end
  end
end
consider(redis.call('LRANGE', KEYS[1], 0, -1))
consider(redis.call('ZRANGE', KEYS[2], 0, -1))
consider(redis.call('ZRANGE', KEYS[3], 0, -1))
return oldest
