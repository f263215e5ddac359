-- update: never creates (SET XX semantics), so a request in flight cannot
-- revive a revoked session; moves the expiry and index score with it.
-- KEYS[1] session key
-- ARGV[1] now; [2] anonymous idle TTL; [3] new expiresAt ('' = keep);
-- [4] prefix; [5] handle; [6..] field/value pairs to set
-- Returns 1, or 0 when there is no live record.
local key, now = KEYS[1], tonumber(ARGV[1])
local cur = redis.call('HMGET', key, 's', 'e', 'u', 't')
if not cur[1] or expired(cur[2], now) then
  return 0
end
if #ARGV >= 6 then
  redis.call('HSET', key, unpack(ARGV, 6))
end
touch(key, ARGV[5], cur[2], cur[3], cur[4], ARGV[3], ARGV[2], ARGV[4], now)
return 1
