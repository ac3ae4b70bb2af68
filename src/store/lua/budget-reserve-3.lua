--[[
  Reserves a request's estimated cost in every window of one subject's budget
  (day, month, all time), if each has room: nothing spent and reserved is at
  its cap, and the reservation fits beside them. Either all windows take it
  or none does. A window whose counter does not exist yet must first be
  seeded from the ledger by the caller (HSETNX), then the call repeated.

  Input:
    KEYS[1]  the day window's counter (RedisKeys.budgetWindow): hash {spent, reserved} in micro-dollars
    KEYS[2]  the month window's counter (same shape)
    KEYS[3]  the all-time counter (same shape)
    ARGV[1]  the reservation (micro-dollars, >= 0)
    ARGV[2]  the day window's cap, or -1 when the budget has none (its key is then ignored)
    ARGV[3]  the month window's cap, or -1
    ARGV[4]  the all-time cap, or -1

  Output:
    { -1, i }                 window i has no counter yet: seed it and call again
    { 0, i, spent, reserved } refused: window i has no room
    { 1, spent1, reserved1, spent2, reserved2, spent3, reserved3 }  admitted (0s for unused windows)

  Atomic because the check of every window and the reservation in all of them
  must be one step: instances admitting at once must not both take the last
  of a budget.
]]
local amount = tonumber(ARGV[1])
local limits = { tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]) }
local counts = {}
for i = 1, 3 do
  local limit = limits[i]
  if limit >= 0 then
    local spent = redis.call('HGET', KEYS[i], 'spent')
    if not spent then return { -1, i } end
    spent = tonumber(spent)
    local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
    if spent + reserved >= limit or spent + reserved + amount > limit then
      return { 0, i, spent, reserved }
    end
    counts[i] = { spent, reserved }
  end
end
local out = { 1 }
for i = 1, 3 do
  if counts[i] then
    local reserved = redis.call('HINCRBY', KEYS[i], 'reserved', amount)
    out[#out + 1] = counts[i][1]
    out[#out + 1] = reserved
  else
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
return out
