-- create: never overwrites a live record (SET NX semantics); writes the
-- record, its expiry and its index entry in one step.
-- KEYS[1] session key; KEYS[2] the user's index (rows with a user only)
-- ARGV[1] now; [2] idle TTL of anonymous rows ('' = none); [3] expiresAt
-- ('' = none); [4] handle; [5..] field/value pairs (at least `s`)
-- Returns 1, or 0 when a live record holds the handle.
local key, now = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', key) == 1 then
  if not expired(redis.call('HGET', key, 'e'), now) then
    return 0
  end
  redis.call('DEL', key)
end
redis.call('HSET', key, unpack(ARGV, 5))
local e = ARGV[3]
if e ~= '' then
  redis.call('PEXPIREAT', key, e)
  if KEYS[2] then
    index_put(KEYS[2], ARGV[4], e, now)
  end
elseif not KEYS[2] and ARGV[2] ~= '' then
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1
