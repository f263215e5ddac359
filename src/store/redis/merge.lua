-- merge into one record's public or private data, atomically.
-- KEYS[1] session key
-- ARGV[1] now; [2] anonymous idle TTL; [3] new expiresAt ('' = keep);
-- [4] prefix; [5] handle; [6] field ('p' or 'v'); [7] '1' = only read;
-- [8..] the merge (see read_merge)
-- Returns {0} when there is no live record; {1, merged} when merged and
-- written; {2, present, stored} when the caller must merge (it then writes
-- with swap.lua).
local key, now, field = KEYS[1], tonumber(ARGV[1]), ARGV[6]
local flag = field == 'p' and 'P' or 'V'
local cur = redis.call('HMGET', key, 's', 'e', 'u', 't', field, flag)
if not cur[1] or expired(cur[2], now) then
  return {0}
end
local base = splice_base(cur[5], cur[6])
if ARGV[7] == '1' or not base then
  if cur[5] then
    return {2, '1', cur[5]}
  end
  return {2, '0', ''}
end
local out = splice(base, read_merge(8))
redis.call('HSET', key, field, out, flag, '1')
touch(key, ARGV[5], cur[2], cur[3], cur[4], ARGV[3], ARGV[2], ARGV[4], now)
return {1, out}
