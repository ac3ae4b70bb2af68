--[[
  Turns a request's reservation into its real cost in every window it was
  reserved in: the reservation released (never below zero), the cost added to
  what is spent. A window whose counter is gone (it ended, or Redis lost it)
  is left alone: the ledger holds the cost and seeds the window's next counter.

  Input:
    KEYS[1]  the day window's counter (RedisKeys.budgetWindow): hash {spent, reserved}
    KEYS[2]  the month window's counter
    KEYS[3]  the all-time counter
    ARGV[1]  what was reserved (micro-dollars)
    ARGV[2]  what the request really cost (micro-dollars)
    ARGV[3]  which windows were reserved in: three characters, `1` or `0` each (day, month, all time)

  Output:
    { spent1, spent2, spent3 }: each window's spend after, -1 for a window not settled

  Atomic because release and spend must move together: a reservation seen
  released without its spend would let a racing request overspend.
]]
local out = {}
for i = 1, 3 do
  if string.sub(ARGV[3], i, i) == '1' and redis.call('HEXISTS', KEYS[i], 'spent') == 1 then
    local reserved = redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(ARGV[1]))
    if reserved < 0 then redis.call('HSET', KEYS[i], 'reserved', 0) end
    out[i] = redis.call('HINCRBY', KEYS[i], 'spent', tonumber(ARGV[2]))
  else
    out[i] = -1
  end
end
return out
