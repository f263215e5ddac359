-- Shared helpers of the Redis session store's scripts; `redis.rs` prepends
-- this file to each of them. The key layout is documented at the top of
-- `src/store/redis.rs`; the hash fields are: s schema, u user id (JSON),
-- t the user's hash tag, e expiresAt (ms), h hashed session token, c
-- anti-CSRF token, p / v public / private data (JSON), P / V "1" when p / v
-- is known to be JSON.stringify output of an object (so it can be spliced).
local byte, find, sub, concat = string.byte, string.find, string.sub, table.concat

-- The key of a handle's hash: its first 8 characters are the hash tag when
-- they all come from the token alphabet, `_` otherwise (`tag_of` in Rust).
local function session_key(prefix, handle)
  local tag = sub(handle, 1, 8)
  if #tag < 8 or find(tag, '[^A-Za-z0-9_%-]') then
    tag = '_'
  end
  return prefix .. '{' .. tag .. '}:s:' .. handle
end

local function index_key(prefix, tag, user)
  return prefix .. '{' .. tag .. '}:u:' .. user
end

-- Whether a stored expiresAt is before the caller's `now` (the record is
-- then gone for the caller, as for the engine: `expiresAt < now`).
local function expired(e, now)
  if not e then
    return false
  end
  local n = tonumber(e)
  if not n then
    error('CORRUPT stored expiresAt is not a number')
  end
  return n < now
end

-- Put a member into a user's index with its expiry as score (or take it
-- out when that expiry has passed), and let the index key itself expire
-- with its longest-lived member, so an index nobody reads again goes away.
local function index_put(idx, member, e, now)
  if tonumber(e) < now then
    redis.call('ZREM', idx, member)
    return
  end
  redis.call('ZADD', idx, e, member)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  local last = tonumber(top[2])
  if last and last < 9007199254740992 then
    redis.call('PEXPIREAT', idx, string.format('%.0f', last))
  else
    redis.call('PERSIST', idx)
  end
end

-- After a write to a live record: move its expiry (key TTL and index
-- score) when a new one is given; otherwise restart the idle lifetime of
-- an anonymous row without expiresAt.
local function touch(key, member, cur_e, cur_u, cur_t, e, ttl, prefix, now)
  if e ~= '' then
    redis.call('HSET', key, 'e', e)
    redis.call('PEXPIREAT', key, e)
    if cur_u and cur_t then
      index_put(index_key(prefix, cur_t, cur_u), member, e, now)
    end
  elseif not cur_u and not cur_e and ttl ~= '' then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- The live sessions of a user, by the caller's `now`: the index is pruned
-- of members that expired, and of members whose record belongs to someone
-- else (a handle re-created after expiring); a member without a record is
-- skipped but kept until its score expires (see below). Returns three
-- arrays: handles, keys, and the HMGET of u, e and the `extra` fields.
-- `utag` is the user's tag: the keys of the user's own handles (all of them
-- in practice) are built without looking at the handle.
local function live_members(idx, prefix, utag, uid, now_s, extra)
  local now = tonumber(now_s)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. now_s)
  local members = redis.call('ZRANGEBYSCORE', idx, '(' .. now_s, '+inf')
  local own = prefix .. '{' .. utag .. '}:s:'
  local handles, keys, rows, n = {}, {}, {}, 0
  for _, m in ipairs(members) do
    local key
    if find(m, utag, 1, true) == 1 then
      key = own .. m
    else
      key = session_key(prefix, m)
    end
    local cur = redis.call('HMGET', key, 'u', 'e', unpack(extra))
    if not cur[1] and not cur[2] and redis.call('EXISTS', key) == 0 then
      -- No record here. Left in the index: records are deleted together
      -- with their member and expire with its score, so a missing one is
      -- most likely being moved by a Cluster resharding and will be back
      -- (pruning it would hide a live session from $revokeAll for good).
      -- Its score removes it when it expires.
    elseif cur[1] ~= uid or not cur[2] then
      redis.call('ZREM', idx, m)
    elseif tonumber(cur[2]) > now then
      n = n + 1
      handles[n], keys[n], rows[n] = m, key, cur
    end
  end
  return handles, keys, rows
end

-- ---------------------------------------------------------------- merging
-- A merge arrives as: the number of keys set, that many (key, value) pairs
-- with the key JSON-quoted and the value already JSON.stringify'd by the
-- caller, then the JSON-quoted keys to remove.
local function read_merge(at)
  local n = tonumber(ARGV[at])
  local m = {k = {}, v = {}, set = {}, rm = {}, seen = {}, stamp = 0}
  for i = 1, n do
    local k, v = ARGV[at + 2 * i - 1], ARGV[at + 2 * i]
    m.k[i], m.v[i], m.set[k] = k, v, v
  end
  for i = at + 2 * n + 1, #ARGV do
    m.rm[ARGV[i]] = true
  end
  return m
end

-- The text to splice into: `{}` for a missing, empty or null value; the
-- stored text when it is known to be JSON.stringify output; nil when only
-- the caller can merge it (it parses and re-serializes).
local function splice_base(text, flag)
  if not text or text == '' or text == 'null' then
    return '{}'
  end
  if flag == '1' then
    return text
  end
  return nil
end

-- Index just past the string starting at s[i] (a quote).
local function skip_string(s, i)
  local j = i + 1
  while true do
    local q = find(s, '["\\]', j)
    if not q then
      error('CORRUPT unterminated string in stored JSON')
    end
    if byte(s, q) == 34 then
      return q + 1
    end
    j = q + 2
  end
end

-- Index just past the value starting at s[i]. The text is JSON.stringify
-- output: no whitespace, so a scalar ends at the next `,` `}` or `]`.
local function skip_value(s, i)
  local c = byte(s, i)
  if c == 34 then
    return skip_string(s, i)
  end
  if c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local q = find(s, '["{}%[%]]', j)
      if not q then
        error('CORRUPT unbalanced brackets in stored JSON')
      end
      local b = byte(s, q)
      if b == 34 then
        j = skip_string(s, q)
      elseif b == 123 or b == 91 then
        depth = depth + 1
        j = q + 1
      else
        depth = depth - 1
        j = q + 1
        if depth == 0 then
          return j
        end
      end
    end
  end
  local q = find(s, '[,}%]]', i)
  if not q or q == i then
    error('CORRUPT bad value in stored JSON')
  end
  return q
end

-- `{...base, ...set}` minus `rm` on JSON.stringify text, byte for byte what
-- JsonMerge::apply writes when no new key is an array index (the caller
-- checks): members keep their text and place, a set key's value text is
-- replaced in place, new keys are appended in the caller's order. Runs of
-- untouched members are copied as one piece.
local function splice(base, m)
  if byte(base, 1) ~= 123 then
    error('CORRUPT stored JSON is not an object')
  end
  m.stamp = m.stamp + 1
  local stamp, set, rm, seen = m.stamp, m.set, m.rm, m.seen
  local pieces, n = {}, 0
  if base ~= '{}' then
    local i, len = 2, #base
    local run = nil -- start of the current run of untouched members
    while true do
      if byte(base, i) ~= 34 then
        error('CORRUPT expected a key in stored JSON')
      end
      local ke = skip_string(base, i)
      if byte(base, ke) ~= 58 then
        error('CORRUPT expected a colon in stored JSON')
      end
      local ve = skip_value(base, ke + 1)
      local qk = sub(base, i, ke - 1)
      local v = set[qk]
      if v or rm[qk] then
        if run then
          n = n + 1
          pieces[n] = sub(base, run, i - 2)
          run = nil
        end
        if v and not rm[qk] then
          n = n + 1
          pieces[n] = qk .. ':' .. v
          seen[qk] = stamp
        end
      elseif not run then
        run = i
      end
      local c = byte(base, ve)
      if c == 44 then
        i = ve + 1
      elseif c == 125 and ve == len then
        if run then
          n = n + 1
          pieces[n] = sub(base, run, ve - 1)
        end
        break
      else
        error('CORRUPT trailing text in stored JSON')
      end
    end
  end
  for i = 1, #m.k do
    local qk = m.k[i]
    if seen[qk] ~= stamp and not rm[qk] then
      n = n + 1
      pieces[n] = qk .. ':' .. m.v[i]
    end
  end
  return '{' .. concat(pieces, ',') .. '}'
end
