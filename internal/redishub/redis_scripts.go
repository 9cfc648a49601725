package redishub

import "github.com/redis/go-redis/v9"

// The Redis engine's writes are Lua scripts: each runs atomically, so
// assigning ids, appending to the topic streams, appending to the bus and
// trimming happen in one step that no other instance can interleave. That is
// what keeps ids strictly increasing across instances without clocks, and
// the bus in id order.
//
// Keys of a hub (base = prefix + hub name; '#' is in neither a hub nor a
// topic name, so no topic key collides with these):
//
//	base ":" topic   stream: the topic's ring; entry ids "<seq>-0",
//	                 fields b (the event without its id line), t (ms, Redis time)
//	base "#seq"      counter: the last seq assigned
//	base "#epoch"    string: the hub's epoch
//	base "#bus"      stream: every event with its topics (k), epoch (e) and
//	                 time (t, ms, Redis time), read by every instance; trimmed
//	                 to about `backlog` entries
//	base "#meta"     hash: "#epoch" the epoch it belongs to; per topic "p:" epoch
//	                 of its stream, "b:" bytes retained, "e:" highest seq
//	                 evicted, "l:" last seq written
//	base "#idem:" K  string: the result of the publish with Idempotency-Key K
//	                 (fingerprint, epoch, first seq, delivered counts), for
//	                 the key window (PX)
//	base "#idem"     sorted set: the recorded keys by time recorded (ms), to
//	                 bound their count
//	base "#pids:" T  sorted set: the public ids of the events topic T's
//	                 stream retains, one member per event, pid "\0" seq (20
//	                 digits), all scored 0: a lexicographic range finds an
//	                 id's events oldest first (ids may repeat; NUL is in no
//	                 id). Trimmed with the stream, expiring with it, so it
//	                 holds no more than the ring. (Versions that refused
//	                 reused ids kept "#pid:" T, one member per id, and
//	                 "#pidtopics"; those keys are no longer read.)
//
// Stream entries (topic and bus) may also carry m (meta), i (public id)
// and h ("1": the hub id is written "#"-prefixed).
//
// A topic with replay_age has its stream expire that long after its last
// event, so per-user topics do not pile up in Redis; "l:" then tells a
// resuming subscriber what it missed.
//
// Redis may lose keys the hub did not delete: evicted under maxmemory by a
// policy that evicts (allkeys-*, or volatile-* for the keys with a TTL), or
// missing from an incomplete restore. What each loss means:
//   - epoch, seq or meta (or meta of another epoch): ids could be issued
//     twice, or a topic's history forgotten without a trace. The hub starts
//     a new epoch: every older id gets an "unknown" reset. Until a script
//     has started it, a replay answers "unknown" too.
//   - a topic stream: "l:" in meta says up to where it held events; a
//     resume before that gets an "evicted" reset, as after replay_age.
//   - the bus: instances behind it see a hole in the seqs and drop their
//     subscribers, who resume by id from the rings.
//   - an idempotency record: a retry with that key publishes again.
//
// Out of memory (maxmemory with noeviction): a script that has not written
// yet is refused with OOM by the first command that can grow memory (Redis
// checks each such command until the script's first write, and none after).
// So every path through a publish writes first with such a command (SET or
// INCRBY, never DEL): an over-limit Redis refuses the publish whole, with
// nothing written.

// LuaNowMs opens each script: nowms is Redis's clock in milliseconds, the
// one clock every instance shares.
const LuaNowMs = `local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// luaField defines field(entry, name): a stream entry's field, or nil.
const luaField = `local function field(entry, name)
	local f = entry[2]
	for i = 1, #f, 2 do
		if f[i] == name then return f[i + 1] end
	end
	return nil
end
`

// luaPidMember defines pidMember(pid, seq): the "#pids:" member of the
// event seq bearing public id pid.
const luaPidMember = `local function pidMember(pid, seq)
	return pid .. '\0' .. string.format('%020d', seq)
end
`

// luaEarliestHeld defines earliestHeld(base, name, pid, age): the seq of
// the oldest event of this epoch bearing public id pid that topic name's
// stream retains, or nil: the entry is still in the stream and younger
// than age (the topic's replay_age, which a publish may not have trimmed
// yet). Members are read a few at a time: the oldest is almost always
// retained. It needs epoch, nowms, field and KEYS[3] (meta).
const luaEarliestHeld = `local function earliestHeld(base, name, pid, age)
	if redis.call('HGET', KEYS[3], 'p:' .. name) ~= epoch then return nil end
	local key, stream = base .. '#pids:' .. name, base .. ':' .. name
	local offset = 0
	while true do
		local ms = redis.call('ZRANGEBYLEX', key, '[' .. pid .. '\0', '(' .. pid .. '\1', 'LIMIT', offset, 8)
		if #ms == 0 then return nil end
		for _, m in ipairs(ms) do
			local seq = tonumber(string.sub(m, #pid + 2))
			local id = string.format('%d-0', seq)
			local e = redis.call('XRANGE', stream, id, id)[1]
			if e and not (age > 0 and tonumber(field(e, 't')) < nowms - age) then return seq end
		end
		offset = offset + #ms
	end
end
`

// luaEpoch, with KEYS seq, epoch, bus, meta and ARGV candidate epoch, known
// epoch, floor seq, sets epoch to the hub's epoch: the candidate when Redis
// has none (first start, Redis came back empty) or lost part of the hub's
// metadata (see above), which starts the count and the bus afresh. In the
// epoch the instance knows, it raises the counter to the floor, the highest
// seq the instance has seen: a Redis restored from an older snapshot then
// does not issue those ids again. Its first write, when it writes, is a SET.
const luaEpoch = `local epoch = redis.call('GET', KEYS[2])
local seq = redis.call('GET', KEYS[1])
if epoch and (not seq or redis.call('HGET', KEYS[4], '#epoch') ~= epoch) then
	epoch = false
end
if not epoch then
	epoch = ARGV[1]
	redis.call('SET', KEYS[2], epoch)
	redis.call('SET', KEYS[1], 0)
	redis.call('DEL', KEYS[3], KEYS[4])
	redis.call('HSET', KEYS[4], '#epoch', epoch)
elseif epoch == ARGV[2] and tonumber(seq) < tonumber(ARGV[3]) then
	redis.call('SET', KEYS[1], ARGV[3])
end
`

// publishScript assigns ids to a batch of events and stores them, or, for
// an idempotency key it has seen, answers the original result.
//
//	KEYS: seq, epoch, bus, meta, idempotency record, idempotency set, then
//	      one stream per topic of the batch
//	ARGV: candidate epoch, known epoch, floor seq, backlog, idempotency key
//	      ("" for none), fingerprint, key window (ms), max keys, delivered
//	      counts (comma-separated), topic count T, then per topic: name,
//	      replay, replay_size, replay_age (ms), then event count N, then per
//	      event: body, meta, public id, hash flag ("1" or ""), topic count
//	      k, k topic indexes (1-based into the topics)
//	returns {"published", epoch, first seq}
//	     or {"replayed", epoch, first seq, delivered counts}
//	     or {"conflict"} (the key was used with another body)
//	     or {"reserved", public id} (nothing written: the id reads as an
//	        id of this epoch)
//
// The floor: Redis restored from an older snapshot has a lower counter than
// ids already handed out; an instance that saw a higher seq in the same
// epoch raises the counter first, so an id is never issued twice.
var publishScript = redis.NewScript(LuaNowMs + luaField + luaPidMember + `
if ARGV[5] ~= '' then
	local rec = redis.call('GET', KEYS[5])
	if rec then
		local fp, e, f, d = string.match(rec, '^([^\n]*)\n([^\n]*)\n(%d+)\n(.*)$')
		if fp ~= ARGV[6] then return {'conflict'} end
		return {'replayed', e, tonumber(f), d}
	end
end
` + luaEpoch + `
local T = tonumber(ARGV[10])
local n = tonumber(ARGV[11 + 4 * T])
-- base: the hub's key prefix (KEYS[1] is base .. '#seq').
local base = string.sub(KEYS[1], 1, #KEYS[1] - 4)

-- The events, read once: body, meta, public id, hash flag, topic indexes.
local evs = {}
local a = 12 + 4 * T
for j = 1, n do
	local e = {body = ARGV[a], meta = ARGV[a + 1], pid = ARGV[a + 2], hash = ARGV[a + 3], idx = {}}
	local k = tonumber(ARGV[a + 4])
	a = a + 5
	for x = 1, k do
		e.idx[x] = tonumber(ARGV[a])
		a = a + 1
	end
	evs[j] = e
end

-- Publisher-chosen ids: refused, before anything is written, when one
-- reads as an id of this epoch. Ids retained events bear are not: a reused
-- id resolves to its earliest event. Only reads here: the first write
-- below must stay the INCRBY (OOM).
for j = 1, n do
	local pid = evs[j].pid
	if pid ~= '' and string.sub(pid, 1, #epoch + 1) == epoch .. '-' and string.match(string.sub(pid, #epoch + 2), '^%d+$') then
		return {'reserved', pid}
	end
end

-- The first write unless luaEpoch wrote: INCRBY, which Redis refuses when
-- over maxmemory (a DEL would pass and let the rest through).
local first = redis.call('INCRBY', KEYS[1], n) - n + 1

local names, counts, sizes, ages = {}, {}, {}, {}
a = 11
for i = 1, T do
	names[i] = ARGV[a]
	counts[i] = tonumber(ARGV[a + 1])
	sizes[i] = tonumber(ARGV[a + 2])
	ages[i] = tonumber(ARGV[a + 3])
	a = a + 4
	-- A stream written in another epoch holds ids of that epoch.
	if redis.call('HGET', KEYS[4], 'p:' .. names[i]) ~= epoch then
		redis.call('DEL', KEYS[6 + i], base .. '#pids:' .. names[i])
		redis.call('HSET', KEYS[4], 'p:' .. names[i], epoch, 'b:' .. names[i], 0, 'e:' .. names[i], 0, 'l:' .. names[i], 0)
	elseif redis.call('EXISTS', KEYS[6 + i]) == 0 then
		-- The stream expired (replay_age passed since its last event) or
		-- was evicted: everything it held was lost.
		redis.call('DEL', base .. '#pids:' .. names[i])
		redis.call('HSET', KEYS[4], 'b:' .. names[i], 0, 'e:' .. names[i], redis.call('HGET', KEYS[4], 'l:' .. names[i]) or 0)
	end
end

local touched, public = {}, {}
for j = 0, n - 1 do
	local e = evs[j + 1]
	local id = string.format('%d-0', first + j)
	-- Meta, public id and hash flag only when set: entries of plain
	-- events stay as they were.
	local fields = {'b', e.body, 't', nowms}
	if e.meta ~= '' then fields[#fields + 1] = 'm'; fields[#fields + 1] = e.meta end
	if e.pid ~= '' then fields[#fields + 1] = 'i'; fields[#fields + 1] = e.pid end
	if e.hash ~= '' then fields[#fields + 1] = 'h'; fields[#fields + 1] = '1' end
	local cost = #e.body + #e.meta + #e.pid + 64
	local tnames = {}
	for x, i in ipairs(e.idx) do
		redis.call('XADD', KEYS[6 + i], id, unpack(fields))
		redis.call('HINCRBY', KEYS[4], 'b:' .. names[i], cost)
		if e.pid ~= '' then
			redis.call('ZADD', base .. '#pids:' .. names[i], 0, pidMember(e.pid, first + j))
			public[i] = true
		end
		touched[i] = first + j
		tnames[x] = names[i]
	end
	fields[#fields + 1] = 'k'; fields[#fields + 1] = table.concat(tnames, '\n')
	fields[#fields + 1] = 'e'; fields[#fields + 1] = epoch
	redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], id, unpack(fields))
end
-- Trim each ring to its replay count, bytes and age, oldest first,
-- remembering the highest seq evicted: a subscriber resuming from before it
-- missed something and gets a reset. The public ids of evicted entries
-- leave the topic's index with them.
for i, last in pairs(touched) do
	local key = KEYS[6 + i]
	local pkey = base .. '#pids:' .. names[i]
	redis.call('HSET', KEYS[4], 'l:' .. names[i], last)
	if ages[i] > 0 then
		-- A topic nobody publishes to any more (one per user, say) does
		-- not keep its stream in Redis beyond its age; nor its index.
		redis.call('PEXPIRE', key, ages[i])
		if public[i] or redis.call('EXISTS', pkey) == 1 then
			redis.call('PEXPIRE', pkey, ages[i])
		end
	end
	local len = redis.call('XLEN', key)
	local bytes = tonumber(redis.call('HGET', KEYS[4], 'b:' .. names[i]) or '0')
	local evicted = nil
	while len > 0 do
		local over = len > counts[i] or bytes > sizes[i]
		local head = nil
		if not over and ages[i] > 0 then
			head = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
			over = tonumber(field(head, 't')) < nowms - ages[i]
		end
		if not over then break end
		head = head or redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
		redis.call('XDEL', key, head[1])
		local hp = field(head, 'i')
		if hp then
			redis.call('ZREM', pkey, pidMember(hp, tonumber(string.match(head[1], '^(%d+)'))))
		end
		len = len - 1
		bytes = bytes - (#field(head, 'b') + #(field(head, 'm') or '') + #(field(head, 'i') or '') + 64)
		evicted = head[1]
	end
	if bytes < 0 then bytes = 0 end
	redis.call('HSET', KEYS[4], 'b:' .. names[i], bytes)
	if evicted then
		local eseq = string.match(evicted, '^(%d+)')
		redis.call('HSET', KEYS[4], 'e:' .. names[i], eseq)
	end
end

-- Record the key with the result, for the key window. The set of keys by
-- time bounds their count: beyond it the oldest are forgotten.
if ARGV[5] ~= '' then
	local window = tonumber(ARGV[7])
	redis.call('SET', KEYS[5], ARGV[6] .. '\n' .. epoch .. '\n' .. string.format('%d', first) .. '\n' .. ARGV[9], 'PX', window)
	redis.call('ZADD', KEYS[6], nowms, ARGV[5])
	redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', nowms - window)
	local over = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[8])
	if over > 0 then
		-- The record keys share KEYS[5]'s prefix (not declared: Redis
		-- Cluster is not supported anyway).
		local prefix = string.sub(KEYS[5], 1, #KEYS[5] - #ARGV[5])
		local old = redis.call('ZPOPMIN', KEYS[6], over)
		for i = 1, #old, 2 do
			redis.call('DEL', prefix .. old[i])
		end
	end
	redis.call('PEXPIRE', KEYS[6], window)
end
return {'published', epoch, first}
`)

// luaEntry defines entry(list, e): appends a stream entry to a reply list
// as id, body, meta, public id, hash flag (5 items, "" for what it lacks),
// and returns its time (ms).
const luaEntry = `local function entry(list, e)
	local f = e[2]
	local body, meta, pid, hash, ms = '', '', '', '', 0
	for x = 1, #f, 2 do
		local k, v = f[x], f[x + 1]
		if k == 'b' then body = v elseif k == 't' then ms = tonumber(v)
		elseif k == 'm' then meta = v elseif k == 'i' then pid = v elseif k == 'h' then hash = v end
	end
	local n = #list
	list[n + 1] = e[1]; list[n + 2] = body; list[n + 3] = meta; list[n + 4] = pid; list[n + 5] = hash
	return ms
end
`

// replayScript reads what a resuming subscriber missed.
//
//	KEYS: seq, epoch, meta, then one stream per topic
//	ARGV: resume seq, upto seq, topic count T, public id ("" for none),
//	      then per topic: name, replay_age (ms)
//	returns {epoch or "", current seq, resume seq, then per topic:
//	         evicted seq, {entries}}; current seq -1 when the hub's
//	         metadata was lost (the next write starts a new epoch); resume
//	         seq -1 when the public id is not retained by any of the
//	         topics. Entries are 5 items each (luaEntry).
//
// With a public id, the resume seq is that of the earliest event bearing
// it that one of the topics retains (ids may be reused). Events between
// the resume seq (exclusive) and upto (inclusive) are returned; events
// older than replay_age count as evicted even before a publish has
// trimmed them, so age is exact.
var replayScript = redis.NewScript(LuaNowMs + luaField + luaEntry + `
local epoch = redis.call('GET', KEYS[2])
if not epoch then return {'', 0, 0} end
local seq = redis.call('GET', KEYS[1])
if not seq or redis.call('HGET', KEYS[3], '#epoch') ~= epoch then return {epoch, -1, 0} end
` + luaEarliestHeld + `
local cur = tonumber(seq)
local resume = tonumber(ARGV[1])
local upto = tonumber(ARGV[2])
local T = tonumber(ARGV[3])
local pid = ARGV[4]
if pid ~= '' then
	local base = string.sub(KEYS[1], 1, #KEYS[1] - 4)
	resume = -1
	local a = 5
	for i = 1, T do
		local found = earliestHeld(base, ARGV[a], pid, tonumber(ARGV[a + 1]))
		a = a + 2
		if found and (resume < 0 or found < resume) then resume = found end
	end
	if resume < 0 then return {epoch, cur, -1} end
end
local from = resume + 1
local out = {epoch, cur, resume}
local a = 5
for i = 1, T do
	local name = ARGV[a]
	local age = tonumber(ARGV[a + 1])
	a = a + 2
	local evicted = 0
	local list = {}
	if redis.call('HGET', KEYS[3], 'p:' .. name) == epoch then
		evicted = tonumber(redis.call('HGET', KEYS[3], 'e:' .. name) or '0')
		if redis.call('EXISTS', KEYS[3 + i]) == 0 then
			-- Expired by replay_age: all it held, up to its last event, is gone.
			local last = tonumber(redis.call('HGET', KEYS[3], 'l:' .. name) or '0')
			if last > evicted then evicted = last end
		end
		if upto >= from then
			local entries = redis.call('XRANGE', KEYS[3 + i], string.format('%d-0', from), string.format('%d-0', upto))
			for _, e in ipairs(entries) do
				local ms = entry(list, e)
				if age > 0 and ms < nowms - age then
					for x = 1, 5 do list[#list] = nil end
					local s = tonumber(string.match(e[1], '^(%d+)'))
					if s > evicted then evicted = s end
				end
			end
		end
	end
	out[#out + 1] = evicted
	out[#out + 1] = list
end
return out
`)

// initialScript reads the initial state of a subscriber with no resume
// point (replay_on_connect): the newest events of each topic.
//
//	KEYS: epoch, meta, then one stream per topic
//	ARGV: upto seq, topic count T, then per topic: name, count,
//	      replay_age (ms)
//	returns {epoch or "", then per topic {entries}}, oldest first, 5
//	        items per entry (luaEntry)
//
// At most count events per topic with a seq up to upto (where the
// subscriber joined the live events); events older than replay_age are
// left out even before a publish has trimmed them. A stream written in
// another epoch holds nothing of this one.
var initialScript = redis.NewScript(LuaNowMs + luaEntry + `
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {''} end
local upto = tonumber(ARGV[1])
local out = {epoch}
local T = tonumber(ARGV[2])
local a = 3
for i = 1, T do
	local name = ARGV[a]
	local count = tonumber(ARGV[a + 1])
	local age = tonumber(ARGV[a + 2])
	a = a + 3
	local list = {}
	if count > 0 and upto > 0 and redis.call('HGET', KEYS[2], 'p:' .. name) == epoch then
		local entries = redis.call('XREVRANGE', KEYS[2 + i], string.format('%d-0', upto), '-', 'COUNT', count)
		local kept = {}
		for _, e in ipairs(entries) do
			local one = {}
			local ms = entry(one, e)
			-- Newest first: the first one too old ends the list.
			if age > 0 and ms < nowms - age then break end
			kept[#kept + 1] = one
		end
		for x = #kept, 1, -1 do
			for y = 1, 5 do list[#list + 1] = kept[x][y] end
		end
	end
	out[#out + 1] = list
end
return out
`)

// epochScript returns the hub's epoch and last seq, setting the candidate
// epoch when Redis has none (first start, or Redis came back empty). Like a
// publish, it raises the counter to the highest seq the instance has seen in
// the same epoch, so a Redis restored from an older snapshot does not issue
// those ids again.
//
//	KEYS: seq, epoch, bus, meta
//	ARGV: candidate epoch, known epoch, floor seq
//	returns {epoch, last seq, Redis time in ms}
var epochScript = redis.NewScript(LuaNowMs + luaEpoch + `
return {epoch, tonumber(redis.call('GET', KEYS[1])), nowms}
`)
