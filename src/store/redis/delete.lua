-- delete: the record and its index entry.
-- KEYS[1] session key; ARGV[1] now; [2] prefix; [3] handle
-- Returns 1 when a live record was deleted, else 0.
local key, now = KEYS[1], tonumber(ARGV[1])
local cur = redis.call('HMGET', key, 's', 'e', 'u', 't')
if not cur[1] then
  redis.call('DEL', key)
  return 0
end
local was_live = not expired(cur[2], now)
redis.call('DEL', key)
if cur[3] and cur[4] then
  redis.call('ZREM', index_key(ARGV[2], cur[4], cur[3]), ARGV[3])
end
if was_live then
  return 1
end
return 0
