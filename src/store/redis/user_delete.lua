-- delete_for_user: every live session of a user, with its index entries.
-- KEYS[1] the user's index; ARGV[1] now; [2] prefix; [3] user id (JSON);
-- [4] the user's tag
-- Returns the handles deleted.
local handles, keys = live_members(KEYS[1], ARGV[2], ARGV[4], ARGV[3], ARGV[1], {})
if #handles > 0 then
  for i = 1, #keys do
    redis.call('DEL', keys[i])
  end
  -- In slices: unpack is limited by Lua's stack.
  for i = 1, #handles, 1000 do
    redis.call('ZREM', KEYS[1], unpack(handles, i, math.min(i + 999, #handles)))
  end
end
return handles
