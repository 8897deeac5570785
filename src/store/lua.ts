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
 * The time of a script in microseconds: ARGV[1], or the server's clock (`TIME`) when it is ''.
 * Read once, when first needed.
 */
const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local now
local function clock()
  if now then return now end
  if ARGV[1] == '' then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  else
    now = tonumber(ARGV[1])
  end
  return now
end
`

/**
 * One request's limits, evaluated as if alone: {@link ./gcra.ts} line by line. `evaluate(k, a, n)`:
 * the request's keys follow KEYS[k], its n limits' arguments follow ARGV[a]. Returns
 * { retry (us), reply (0-based limit index or -1), denied limit indexes (0-based)... }.
 */
const EVALUATE = `
local function evaluate(k, a, n)
  local now = clock()
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
`

/** `claim(key, value, ttl)`: SET NX PX; false where it set, else the value already there. */
const CLAIM = `
local function claim(key, value, ttl)
  if redis.call('SET', key, value, 'NX', 'PX', ttl) then return false end
  return redis.call('GET', key)
end
`

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
export const LIMIT_SCRIPT = `${NOW}${EVALUATE}
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
export const MARKS_SCRIPT = `${CLAIM}
local out = {}
for i = 1, #KEYS do
  local value, ttl = ARGV[3 * i - 2], ARGV[3 * i - 1]
  if ARGV[3 * i] == '0' then
    redis.call('SET', KEYS[i], value, 'PX', ttl)
    out[i] = false
  else
    out[i] = claim(KEYS[i], value, ttl)
  end
end
return out
`

/**
 * The chains of one or more updates (src/store/index.ts, `Chain`), one after the other, each in
 * one step: its steps in order, each applied only when every step before it let the update
 * through, so a batch means what its chains would mean run one by one, and each chain what its
 * steps would mean sent one at a time with the client deciding in between.
 *
 * A chain's arguments (its steps' kinds, TTLs, limit parameters, the snapshot's generation) are
 * the same for every update of one bot and policy, and only its keys differ: the arguments are
 * sent once per distinct list, a shape, and each chain names its shape by index.
 *
 * KEYS: each chain's keys in turn, each step's in turn.
 * ARGV[1]: now in microseconds, or '' for the server's clock (see LIMIT_SCRIPT).
 * ARGV[2]: the number of shapes. Then each shape: its length (the count of the values that
 * follow), its number of steps, and per step its kind and its arguments:
 * - 'b' (blocks): the snapshot's generation ('' for none), the index of the key the snapshot finds
 *   blocked (0-based, -1 for none), the number of block keys m. KEYS: the generation key, then the
 *   m block keys. Answers { generation or false, index of the block that applies or -1 }: no
 *   generation, none applies; the snapshot's, the snapshot's; another, the first block key set.
 * - 'c' (claim): value, ttl (ms), '1' to let a taken mark through, else '0'. KEYS: the mark.
 *   Answers { false } where it set, else { the value already there }.
 * - 'l' (limits): n, the number of KEYS, and four per limit, as in LIMIT_SCRIPT. Answers as there.
 * Then the number of chains, and each chain's shape (1-based).
 * Returns one array per chain, of one array per step; a step after one that stopped the update
 * touches nothing and answers an empty array.
 */
export const CHAIN_SCRIPT = `${NOW}${EVALUATE}${CLAIM}
local result = {}
local generations = {}
local shapes = {}
local at = 2
for s = 1, tonumber(ARGV[2]) do
  shapes[s] = at + 1
  at = at + 1 + tonumber(ARGV[at + 1])
end
local k = 0
for c = 1, tonumber(ARGV[at + 1]) do
  local a = shapes[tonumber(ARGV[at + 1 + c])]
  local steps = tonumber(ARGV[a + 1])
  a = a + 1
  local stopped = false
  local answers = {}
  for s = 1, steps do
    local kind = ARGV[a + 1]
    local out = {}
    if kind == 'b' then
      local m = tonumber(ARGV[a + 4])
      if not stopped then
        -- One read per generation key and script: nothing here writes it, and a script is atomic.
        local generation = generations[KEYS[k + 1]]
        if generation == nil then
          generation = redis.call('GET', KEYS[k + 1])
          generations[KEYS[k + 1]] = generation
        end
        local found = -1
        if generation then
          if generation == ARGV[a + 2] then
            found = tonumber(ARGV[a + 3])
          else
            for i = 1, m do
              if redis.call('EXISTS', KEYS[k + 1 + i]) == 1 then
                found = i - 1
                break
              end
            end
          end
        end
        out = { generation, found }
        stopped = found >= 0
      end
      k = k + 1 + m
      a = a + 4
    elseif kind == 'c' then
      if not stopped then
        local existing = claim(KEYS[k + 1], ARGV[a + 2], ARGV[a + 3])
        out = { existing }
        stopped = existing ~= false and ARGV[a + 4] == '0'
      end
      k = k + 1
      a = a + 4
    else
      local n = tonumber(ARGV[a + 2])
      if not stopped then
        out = evaluate(k, a + 3, n)
        stopped = out[1] > 0
      end
      k = k + tonumber(ARGV[a + 3])
      a = a + 3 + 4 * n
    end
    answers[s] = out
  end
  result[c] = answers
end
return result
`
