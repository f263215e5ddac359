-- get_for_user: the user's live records.
-- KEYS[1] the user's index; ARGV[1] now; [2] prefix; [3] user id (JSON);
-- [4] the user's tag
-- Returns {handle, HGETALL, handle, HGETALL, ...}.
local handles, keys = live_members(KEYS[1], ARGV[2], ARGV[4], ARGV[3], ARGV[1], {})
local out = {}
for i = 1, #handles do
  out[2 * i - 1] = handles[i]
  out[2 * i] = redis.call('HGETALL', keys[i])
end
return out
