-- compare-and-set of one record's public or private data: the write of a
-- merge the caller computed from the value it read.
-- KEYS[1] session key
-- ARGV[1] now; [2] anonymous idle TTL; [3] new expiresAt ('' = keep);
-- [4] prefix; [5] handle; [6] field ('p' or 'v'); [7] '1' if the value
-- read was present; [8] the value read; [9] new value; [10] its P/V flag
-- Returns 1 written, 0 no live record, 2 changed since read (retry).
local key, now, field = KEYS[1], tonumber(ARGV[1]), ARGV[6]
local flag = field == 'p' and 'P' or 'V'
local cur = redis.call('HMGET', key, 's', 'e', 'u', 't', field)
if not cur[1] or expired(cur[2], now) then
  return 0
end
if (cur[5] and '1' or '0') ~= ARGV[7] or (cur[5] and cur[5] ~= ARGV[8]) then
  return 2
end
redis.call('HSET', key, field, ARGV[9], flag, ARGV[10])
touch(key, ARGV[5], cur[2], cur[3], cur[4], ARGV[3], ARGV[2], ARGV[4], now)
return 1
