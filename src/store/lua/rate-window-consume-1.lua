--[[
  One rate-limit decision for one subject (a key, a team, a user...): every
  rule of the subject is checked, and only when all of them have room is the
  cost counted in all of them. Each rule is a sliding window kept as
  `buckets` sub-windows in one hash: the field `<rule id>:<bucket index>`
  counts what was admitted in that sub-window. A bucket leaves the window only
  once its end is a whole window old, so no window of the stated length ever
  admits more than the limit (a bucket may stay up to 1/buckets of the window
  longer than it must). Time is Redis's own clock, so instances whose clocks
  disagree still share one window.

  Input:
    KEYS[1]  the subject's windows (RedisKeys.rateWindows): hash of `<rule>:<bucket>` -> count
    ARGV[1]  buckets per window (>= 1)
    ARGV[2]  the rules, one per line: `<rule id> <window ms> <limit> <cost>`

  Output:
    { admitted (1 or 0), now (ms), then per rule in order: used, reset at (ms), retry at (ms) }
    used      what the window holds, the cost included when admitted
    reset at  when the oldest bucket still in the window leaves it (now when none)
    retry at  0 when the cost fits; when it was refused, the time enough leaves
              for it to fit; -1 when it never fits (the cost is above the limit)

  Atomic because the check of every rule and the counting in all of them must
  be one step: instances deciding at once must not both take the last unit,
  and a request refused by one rule must not be counted by another.
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local buckets = tonumber(ARGV[1])

local rules, byId = {}, {}
for id, window, limit, cost in string.gmatch(ARGV[2], '(%S+) (%d+) (%d+) (%d+)') do
  window = tonumber(window)
  local width = math.max(1, math.floor(window / buckets))
  local rule = {
    id = id, window = window, limit = tonumber(limit), cost = tonumber(cost), width = width,
    current = math.floor(now / width), used = 0, live = {},
  }
  rules[#rules + 1] = rule
  byId[id] = rule
end

-- Sum each rule's live buckets; forget the dead ones and fields of rules no longer configured.
local fields = redis.call('HGETALL', KEYS[1])
local dead = {}
for i = 1, #fields, 2 do
  local field = fields[i]
  local split = string.find(field, ':[^:]*$')
  local rule = split and byId[string.sub(field, 1, split - 1)]
  local index = split and tonumber(string.sub(field, split + 1))
  if rule and index and (index + 1) * rule.width + rule.window > now then
    local count = tonumber(fields[i + 1])
    rule.used = rule.used + count
    rule.live[#rule.live + 1] = { index, count }
  else
    dead[#dead + 1] = field
  end
end
if #dead > 0 then redis.call('HDEL', KEYS[1], unpack(dead)) end

local admitted = 1
for _, rule in ipairs(rules) do
  if rule.used + rule.cost > rule.limit then admitted = 0 end
end

local longest = 0
local out = { admitted, now }
for _, rule in ipairs(rules) do
  if admitted == 1 and rule.cost > 0 then
    redis.call('HINCRBY', KEYS[1], rule.id .. ':' .. rule.current, rule.cost)
    rule.used = rule.used + rule.cost
    rule.live[#rule.live + 1] = { rule.current, rule.cost }
  end
  table.sort(rule.live, function(a, b) return a[1] < b[1] end)
  local reset = now
  if #rule.live > 0 then reset = (rule.live[1][1] + 1) * rule.width + rule.window end
  local retry = 0
  if rule.used + rule.cost > rule.limit and admitted == 0 then
    if rule.cost > rule.limit then
      retry = -1
    else
      local left = rule.used
      for _, bucket in ipairs(rule.live) do
        left = left - bucket[2]
        if left + rule.cost <= rule.limit then
          retry = (bucket[1] + 1) * rule.width + rule.window
          break
        end
      end
    end
  end
  out[#out + 1] = rule.used
  out[#out + 1] = reset
  out[#out + 1] = retry
  if rule.window + rule.width > longest then longest = rule.window + rule.width end
end
if longest > 0 and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], longest) end
return out
