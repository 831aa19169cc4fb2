"""The Lua scripts: two lookups, each one round trip (a plain value, a composed
page), and the bump that moves a generation once per outbox row.

Both read generations (seeding a missing one from the server clock, never from
a number an evicted or expired counter may have used, and with an expiry: a
lookup of any id leaves no key that outlives the longest TTL), read the value
under them, and count the hit or miss in the name's stats hash. Every key is
spelled by keys.py: generation and stats keys arrive as KEYS, value keys are
built with its `LUA_KEYS` functions. They run through redis-py `Script`
objects (`register_script`), which reload them after a server restart.
"""

from __future__ import annotations

from electro_isla.cache.keys import LUA_KEYS

_COUNT = """
local function count(stats, hit, now)
  local field = 'misses'
  if hit then field = 'hits' end
  redis.call('HINCRBY', stats, field, 1)
  redis.call('HSET', stats, 'last_updated', now[1] .. '.' .. string.format('%06d', now[2]))
end
"""

# KEYS: the name's generation key, the row's (row families), the name's stats key.
# ARGV: value head `<prefix>:v:{<name>}:`, row part, params part, a seeded counter's
# lifetime. Returns {version, raw value or nil}.
LOOKUP = (
    LUA_KEYS
    + _COUNT
    + """
local ngen = #KEYS - 1
local gens = redis.call('MGET', unpack(KEYS, 1, ngen))
local now = redis.call('TIME')
for i = 1, ngen do
  if not gens[i] then
    redis.call('SET', KEYS[i], now[1] .. string.format('%06d', now[2]) .. '000', 'NX', 'EX', ARGV[4])
    gens[i] = redis.call('GET', KEYS[i])
  end
end
local ver = version(gens)
local value = redis.call('GET', value_key(ARGV[1], ARGV[2], ver, ARGV[3]))
count(KEYS[#KEYS], value, now)
return {ver, value}
"""
)

# KEYS: the name's generation key, its stats key. ARGV: value head, the page's params
# part, a seeded counter's lifetime, "1" to count the lookup, the name's TTL.
# A page joined from its fragments is kept as a memo (the rows' versions, the body,
# the tagged text): while every row is at the version it was joined from, a HIT
# reads the memo instead of every fragment; it is made of exactly those fragments,
# so it is exactly as fresh. Returns {g} when the id list is missing; {g, count, 1,
# body, tagged} when every fragment is there; else {g, count, 0, id1, version1,
# fragment1 or "", id2, ...}.
PAGE_LOOKUP = (
    LUA_KEYS
    + _COUNT
    + """
local gen_key, stats, vhead, params = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now = redis.call('TIME')
local seed = now[1] .. string.format('%06d', now[2]) .. '000'
local function seeded(keys, values)
  for i = 1, #keys do
    if not values[i] then
      redis.call('SET', keys[i], seed, 'NX', 'EX', ARGV[3])
      values[i] = redis.call('GET', keys[i])
    end
  end
  return values
end
local g = seeded({gen_key}, {redis.call('GET', gen_key)})[1]
local raw = redis.call('GET', value_key(vhead, NO_ROW, g, params .. IDS))
local result = {g}
local hit = false
if raw then
  local list = cjson.decode(raw)
  local ids, gkeys, vkeys = {}, {}, {}
  for i, id in ipairs(list['ids']) do
    ids[i] = string.format('%d', id)
    gkeys[i] = row_gen_key(gen_key, ids[i])
  end
  local gens = {}
  if #ids > 0 then gens = seeded(gkeys, redis.call('MGET', unpack(gkeys))) end
  local versions = version(gens)
  local memo_key = value_key(vhead, NO_ROW, g, params .. PAGE)
  local memo = redis.call('GET', memo_key)
  if memo then
    local a = string.find(memo, '\\n', 1, true)
    if string.sub(memo, 1, a - 1) == versions then
      local b = string.find(memo, '\\n', a + 1, true)
      hit = true
      result = {g, list['count'], 1, string.sub(memo, a + 1, b - 1), string.sub(memo, b + 1)}
    end
  end
  local values = {}
  if not hit and #ids > 0 then
    for i = 1, #ids do
      vkeys[i] = value_key(vhead, ids[i], version({g, gens[i]}), ROW)
    end
    values = redis.call('MGET', unpack(vkeys))
  end
  local bodies, tagged, complete = {}, {}, true
  for i = 1, #ids do
    if hit then break end
    if values[i] then
      local row = cjson.decode(values[i])
      bodies[i], tagged[i] = row['b'], row['t']
    else
      complete = false
    end
  end
  if hit then
    -- answered from the memo
  elseif complete then
    hit = true
    local body, joined = table.concat(bodies, ','), table.concat(tagged, ', ')
    redis.call('SET', memo_key, versions .. '\\n' .. body .. '\\n' .. joined, 'EX', ARGV[5])
    result = {g, list['count'], 1, body, joined}
  else
    result = {g, list['count'], 0}
    for i = 1, #ids do
      result[#result + 1] = ids[i]
      result[#result + 1] = version({g, gens[i]})
      result[#result + 1] = values[i] or ''
    end
  end
end
if ARGV[4] == '1' then count(stats, hit, now) end
return result
"""
)

# KEYS: one generation key, then the applied marks of the outbox rows that bump it
# (keys.applied_key: the same slot). ARGV: a missing counter's seed, its lifetime, a
# mark's lifetime. Moves the generation unless every row's mark was already there
# (a drain racing the writer's own apply); no rows: always. Returns 1 if it moved.
# The marks are tested one by one: a backlog after an outage holds thousands of rows
# for one key, and Lua's unpack stops at about 8,000 values. They are set after the
# INCR: a failing INCR (a key of another type) leaves none, so the row is applied
# again rather than taken as done.
BUMP = """
local fresh = #KEYS == 1
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    fresh = true
    break
  end
end
if not fresh then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[3])
end
return 1
"""
