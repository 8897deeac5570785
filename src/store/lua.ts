/**
 * @module
 * The Redis store's Lua scripts. A script runs atomically on the server (Redis docs, "Scripting
 * with Lua": "Redis guarantees the script's atomic execution"), so evaluating every limit of a
 * request and consuming only if all pass is one round trip with no race between replicas.
 *
 * Each script declares every key it touches in KEYS, as Redis Cluster requires; the caller puts
 * all of them under one hash tag so they share a slot (Redis Cluster specification, "Hash tags").
 */

/**
 * Every limit of one or more requests, in one step. Each request's limits are evaluated as if
 * alone (all of them consume, or none does), one request after the other, so a batch means what
 * its requests would mean in separate scripts run in that order. The arithmetic is
 * {@link ./gcra.ts} line by line, in whole microseconds, which Lua's doubles hold exactly.
 *
 * The time is the server's (`TIME`), so replicas with skewed clocks still share one timeline.
 * Scripts that call `TIME` and then write are replicated by their effects, the default since Redis
 * 5 and the only mode since 7 (Redis docs, "Scripts replication"); `redis.replicate_commands()`
 * turns that mode on for Redis 3.2 and 4 and is a no-op after.
 *
 * A reply-once mark holds the time (us) until which the limit's reply is not sent again: like
 * the TAT it is compared with the script's clock, so replies follow the same timeline as limits.
 *
 * KEYS: each request's keys in turn: its n limits' keys, then its reply-once marks.
 * ARGV[1]: now in microseconds, or '' for the server's clock (only tests pass a time).
 * ARGV[2]: the number of requests. Then, per request: n, the number of KEYS it uses, and four
 * per limit: interval (T, us), tolerance (T x B, us), '1' for shadow else '0', and the index of
 * its reply-once mark among the request's KEYS (1-based; 0: none).
 * Returns, per request, a count c and then c values: { retry (us), reply (0-based limit index or
 * -1), denied limit indexes (0-based)... }.
 */
export const LIMIT_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
-- One request: its keys follow KEYS[k], its n limits' arguments follow ARGV[a].
local function evaluate(k, a, n)
  local stored = redis.call('MGET', unpack(KEYS, k + 1, k + n))
  local next = {}
  local denied = {}
  local blocked = false
  local retry = 0
  for i = 1, n do
    local b = a + (i - 1) * 4
    local interval = tonumber(ARGV[b + 1])
    local tolerance = tonumber(ARGV[b + 2])
    local tat = now
    if stored[i] then
      tat = tonumber(stored[i]) or now
      if tat < now then tat = now end
    end
    if tat > now + tolerance then tat = now + tolerance end
    tat = tat + interval
    if tat - now <= tolerance then
      next[i] = tat
    else
      next[i] = false
      denied[#denied + 1] = i - 1
      if ARGV[b + 3] == '0' then
        blocked = true
        if tat - tolerance - now > retry then retry = tat - tolerance - now end
      end
    end
  end
  local reply = -1
  if blocked then
    for _, d in ipairs(denied) do
      local b = a + d * 4
      local mark = tonumber(ARGV[b + 4])
      if ARGV[b + 3] == '0' and mark > 0 then
        local interval = tonumber(ARGV[b + 1])
        local until_ = tonumber(redis.call('GET', KEYS[k + mark]) or '0') or 0
        if until_ <= now then
          redis.call('SET', KEYS[k + mark], string.format('%.0f', now + interval), 'PX', math.ceil(interval / 1000))
          reply = d
        end
        break
      end
    end
  else
    for i = 1, n do
      if next[i] then
        redis.call('SET', KEYS[k + i], string.format('%.0f', next[i]), 'PX', math.ceil((next[i] - now) / 1000))
      end
    end
  end
  local out = { retry, reply }
  for _, d in ipairs(denied) do out[#out + 1] = d end
  return out
end
local result = {}
local k = 0
local a = 2
for _ = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[a + 1])
  local out = evaluate(k, a + 2, n)
  result[#result + 1] = #out
  for _, v in ipairs(out) do result[#result + 1] = v end
  k = k + tonumber(ARGV[a + 2])
  a = a + 2 + 4 * n
end
return result
`

/**
 * Claims and puts in one step, each key in turn, in the order they were asked for. A put is
 * `SET key value PX ttl` and answers false. A claim is `SET key value NX PX ttl`, answering false
 * where it set, else the value already there (Redis 7 can say `SET ... NX GET`; this form works on
 * every version). A key claimed twice in one batch (two copies of an update in the same instant)
 * is claimed by the first and answered with its value for the second.
 * ARGV: value, ttl (ms) and mode ('1': claim, '0': put) of each key in turn.
 */
export const MARKS_SCRIPT = `
local out = {}
for i = 1, #KEYS do
  local value, ttl = ARGV[3 * i - 2], ARGV[3 * i - 1]
  if ARGV[3 * i] == '0' then
    redis.call('SET', KEYS[i], value, 'PX', ttl)
    out[i] = false
  elseif redis.call('SET', KEYS[i], value, 'NX', 'PX', ttl) then
    out[i] = false
  else
    out[i] = redis.call('GET', KEYS[i])
  end
end
return out
`
