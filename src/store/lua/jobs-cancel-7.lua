--[[
  Cancels a job of the BullMQ job queue (src/jobs/bullmq-job-queue.ts).
  BullMQ has no cancelled state, so a job still waiting (wait, paused,
  prioritized or delayed for a retry) is moved to the queue's failed set with
  the cancel mark in its hash: it keeps its payload and history and reads
  back as cancelled. A job that exists and is in none of those is active (we
  never use BullMQ's waiting-children): it is only marked; its worker polls
  the mark and aborts the handler, then fails the job the same way.

  Input:
    KEYS[1]  the queue's wait list (BullMQ `wait`)
    KEYS[2]  the queue's paused list (BullMQ `paused`)
    KEYS[3]  the queue's prioritized jobs (BullMQ `prioritized`): sorted set
    KEYS[4]  the queue's delayed jobs (BullMQ `delayed`): sorted set
    KEYS[5]  the queue's failed jobs (BullMQ `failed`): sorted set by finish time
    KEYS[6]  the job's hash (BullMQ `<prefix>:<queue>:<id>`)
    KEYS[7]  the queue's cancelled job ids (RedisKeys.jobsCancelled): set
    ARGV[1]  the job id
    ARGV[2]  now (epoch ms)
    ARGV[3]  the hash field that holds the cancel mark
    ARGV[4]  the failure message a cancelled job keeps

  Output:
    1  cancelled (it was waiting)
    2  marked (it is active)
    0  unchanged: no such job, or it has finished (completed, failed or cancelled)

  Atomic because workers take jobs in scripts of their own: checked and moved
  in one step, a job is either cancelled before any worker takes it or marked
  while one holds it, never both and never neither.
]]
local jobKey = KEYS[6]
local jobId = ARGV[1]
if redis.call('EXISTS', jobKey) == 0 or redis.call('HEXISTS', jobKey, 'finishedOn') == 1 then
  return 0
end
local removed = redis.call('LREM', KEYS[1], 0, jobId) + redis.call('LREM', KEYS[2], 0, jobId)
  + redis.call('ZREM', KEYS[3], jobId) + redis.call('ZREM', KEYS[4], jobId)
if removed > 0 then
  redis.call('HSET', jobKey, ARGV[3], 'cancelled', 'failedReason', ARGV[4], 'finishedOn', ARGV[2])
  redis.call('ZADD', KEYS[5], ARGV[2], jobId)
  redis.call('SADD', KEYS[7], jobId)
  return 1
end
redis.call('HSET', jobKey, ARGV[3], 'requested')
return 2
