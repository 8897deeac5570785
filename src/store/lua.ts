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
 * Every limit of one request, in one step. The arithmetic is {@link ./gcra.ts} line by line, in
 * whole microseconds, which Lua's doubles hold exactly.
 *
 * The time is the server's (`TIME`), so replicas with skewed clocks still share one timeline.
 * Scripts that call `TIME` and then write are replicated by their effects, the default since Redis
 * 5 and the only mode since 7 (Redis docs, "Scripts replication"); `redis.replicate_commands()`
 * turns that mode on for Redis 3.2 and 4 and is a no-op after.
 *
 * A reply-once mark holds the time (us) until which the limit's reply is not sent again: like
 * the TAT it is compared with the script's clock, so replies follow the same timeline as limits.
 *
 * KEYS[1..n]: the limits' keys; KEYS[n+1..]: reply-once marks.
 * ARGV[1]: now in microseconds, or '' for the server's clock (only tests pass a time).
 * ARGV[2]: n. Then four per limit: interval (T, us), tolerance (T x B, us), '1' for shadow else
 * '0', and the KEYS index of its reply-once mark (0: none).
 * Returns { retry (us), reply (0-based limit index or -1), denied limit indexes (0-based)... }.
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
local n = tonumber(ARGV[2])
local stored = redis.call('MGET', unpack(KEYS, 1, n))
local next = {}
local denied = {}
local blocked = false
local retry = 0
for i = 1, n do
  local a = 3 + (i - 1) * 4
  local interval = tonumber(ARGV[a])
  local tolerance = tonumber(ARGV[a + 1])
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
    if ARGV[a + 2] == '0' then
      blocked = true
      if tat - tolerance - now > retry then retry = tat - tolerance - now end
    end
  end
end
local reply = -1
if blocked then
  for _, d in ipairs(denied) do
    local a = 3 + d * 4
    local mark = tonumber(ARGV[a + 3])
    if ARGV[a + 2] == '0' and mark > 0 then
      local interval = tonumber(ARGV[a])
      local until_ = tonumber(redis.call('GET', KEYS[mark]) or '0') or 0
      if until_ <= now then
        redis.call('SET', KEYS[mark], string.format('%.0f', now + interval), 'PX', math.ceil(interval / 1000))
        reply = d
      end
      break
    end
  end
else
  for i = 1, n do
    if next[i] then
      redis.call('SET', KEYS[i], string.format('%.0f', next[i]), 'PX', math.ceil((next[i] - now) / 1000))
    end
  end
end
local out = { retry, reply }
for _, d in ipairs(denied) do out[#out + 1] = d end
return out
`

/** `SET key value PX ttl` for every key: many marks in one round trip. ARGV: value, ttl (ms). */
export const PUT_ALL_SCRIPT = `
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return #KEYS
`

/**
 * `SET key value NX PX ttl`, answering the value already there when it did not set: a claim in one
 * round trip. (Redis 7 can say `SET ... NX GET`; this form works on every version.)
 */
export const CLAIM_SCRIPT = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
`
