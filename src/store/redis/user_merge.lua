-- merge_public_data_for_user: one merge into every live session of a
-- user, all or nothing.
-- KEYS[1] the user's index; ARGV[1] now; [2] prefix; [3] user id (JSON);
-- [4] the user's tag; [5] '1' = only read; [6..] the merge (see read_merge)
-- Returns {1, handle...} when merged and written; {2, (handle, present,
-- stored)...} when the caller must merge (it then writes with
-- user_swap.lua).
local handles, keys, rows = live_members(KEYS[1], ARGV[2], ARGV[4], ARGV[3], ARGV[1], {'p', 'P'})
local n = #handles
local bases, caller = {}, ARGV[5] == '1'
for i = 1, n do
  bases[i] = splice_base(rows[i][3], rows[i][4])
  if not bases[i] then
    caller = true
  end
end
if caller then
  local out = {2}
  for i = 1, n do
    local stored = rows[i][3]
    out[3 * i - 1] = handles[i]
    out[3 * i] = stored and '1' or '0'
    out[3 * i + 1] = stored or ''
  end
  return out
end
local m = read_merge(6)
-- Every merge first, so a corrupt record fails the script before any
-- write; sessions of one user mostly share their public data, so each
-- distinct text is merged once.
local merged, memo = {}, {}
for i = 1, n do
  local b = bases[i]
  local out = memo[b]
  if not out then
    out = splice(b, m)
    memo[b] = out
  end
  merged[i] = out
end
for i = 1, n do
  if rows[i][4] == '1' then
    redis.call('HSET', keys[i], 'p', merged[i])
  else
    redis.call('HSET', keys[i], 'p', merged[i], 'P', '1')
  end
end
table.insert(handles, 1, 1)
return handles
