-- compare-and-set of the public data of every live session of a user: the
-- write of merges the caller computed from what user_merge.lua returned.
-- KEYS[1] the user's index; ARGV[1] now; [2] prefix; [3] user id (JSON);
-- [4] the user's tag; [5] n; then n times: handle, '1' if present, value
-- read, new value, flag
-- Returns 1 written; 2 when the live sessions or their data changed since
-- the read (retry).
local handles, keys, rows = live_members(KEYS[1], ARGV[2], ARGV[4], ARGV[3], ARGV[1], {'p'})
local n = tonumber(ARGV[5])
if #handles ~= n then
  return 2
end
local at_of = {}
for i = 1, n do
  at_of[handles[i]] = i
end
for j = 0, n - 1 do
  local at = 6 + 5 * j
  local i = at_of[ARGV[at]]
  if not i then
    return 2
  end
  local stored = rows[i][3]
  if (stored and '1' or '0') ~= ARGV[at + 1] or (stored and stored ~= ARGV[at + 2]) then
    return 2
  end
end
for j = 0, n - 1 do
  local at = 6 + 5 * j
  redis.call('HSET', keys[at_of[ARGV[at]]], 'p', ARGV[at + 3], 'P', ARGV[at + 4])
end
return 1
