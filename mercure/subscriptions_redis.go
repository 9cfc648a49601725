package mercure

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/logthrottle"
	"github.com/ssehub/caddy-sse/internal/redishub"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The Redis engine's subscriptions registry, shared by every instance of
// the hub. Keys (base = prefix + hub name, next to the engine's, see
// internal/redishub/redis_scripts.go):
//
//	base "#subs"           hash: subscription id -> connections holding it, all instances
//	base "#subs:docs"      hash: subscription id -> its record (mercureSub as JSON, in
//	                       neither protocol's shape: the API and the events render it)
//	base "#subs:instances" sorted set: instance id, scored by the Redis time (ms) it
//	                       expires at unless it refreshes it
//	base "#subs@" inst     hash: subscription id -> connections of this instance
//
// Every change is a Lua script, so a subscription's count and document
// change together. Each instance refreshes its score every TTL/3; the
// first instance to see another's score past (a crashed instance)
// removes its connections from the counts, in one script, and publishes
// active:false for the subscriptions that ended. An instance also keeps
// its own counts in memory (the mirror): when Redis missed a change (a
// call failed) or removed the instance (it could not refresh for a TTL),
// its next heartbeat rewrites its hash from the mirror, publishing the
// events of the subscriptions that this made active or ended. Memory and
// Redis hold one entry per active subscription. The scripts name keys
// they compute, so the registry needs a single Redis (or Sentinel), not
// a Cluster — as the engine.
type redisSubsRegistry struct {
	rh     *redishub.RedisHub
	inst   string
	ttl    time.Duration
	logger *zap.Logger

	// sync: joins and leaves hold it shared, a resync exclusively, so
	// the mirror and the instance's hash are rewritten as one.
	sync   sync.RWMutex
	mu     sync.Mutex
	mirror map[string]*countedSub
	dirty  atomic.Bool // a call failed: Redis may differ from the mirror

	notify atomic.Pointer[func([]mercureSub, bool)]
	log    logthrottle.Throttle
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func newRedisSubsRegistry(rh *redishub.RedisHub, ttl time.Duration, logger *zap.Logger) *redisSubsRegistry {
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &redisSubsRegistry{rh: rh, inst: hub.NewEpoch() + hub.NewEpoch(), ttl: ttl, logger: logger,
		mirror: make(map[string]*countedSub), cancel: cancel}
	r.log.Every = 10 * time.Second
	r.done.Add(1)
	go r.heartbeats(ctx)
	return r
}

func (r *redisSubsRegistry) countsKey() string    { return r.rh.KeyBase() + "#subs" }
func (r *redisSubsRegistry) docsKey() string      { return r.rh.KeyBase() + "#subs:docs" }
func (r *redisSubsRegistry) instancesKey() string { return r.rh.KeyBase() + "#subs:instances" }
func (r *redisSubsRegistry) instPrefix() string   { return r.rh.KeyBase() + "#subs@" }
func (r *redisSubsRegistry) keys() []string {
	return []string{r.countsKey(), r.docsKey(), r.instPrefix() + r.inst, r.instancesKey()}
}

// joinScript: ARGV id, doc pairs. Returns the ids that became active.
var subsJoinScript = redis.NewScript(`
local out = {}
for i = 1, #ARGV, 2 do
	redis.call('HINCRBY', KEYS[3], ARGV[i], 1)
	if redis.call('HINCRBY', KEYS[1], ARGV[i], 1) == 1 then
		redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
		out[#out + 1] = ARGV[i]
	end
end
return out
`)

// leaveScript: ARGV ids. Only what this instance holds is counted out.
// Returns the ids that ended.
var subsLeaveScript = redis.NewScript(`
local out = {}
for i = 1, #ARGV do
	local id = ARGV[i]
	local n = tonumber(redis.call('HGET', KEYS[3], id) or '0')
	if n > 0 then
		if n == 1 then redis.call('HDEL', KEYS[3], id) else redis.call('HINCRBY', KEYS[3], id, -1) end
		if redis.call('HINCRBY', KEYS[1], id, -1) <= 0 then
			redis.call('HDEL', KEYS[1], id)
			redis.call('HDEL', KEYS[2], id)
			out[#out + 1] = id
		end
	end
end
return out
`)

// heartbeatScript: ARGV instance, ttl ms, instance hash prefix. Refreshes
// the instance and reaps at most 16 expired ones. Returns {1 if the
// instance was absent, the documents of the subscriptions that ended}.
var subsHeartbeatScript = redis.NewScript(redishub.LuaNowMs + `
local added = redis.call('ZADD', KEYS[4], nowms + tonumber(ARGV[2]), ARGV[1])
local gone = {}
for _, inst in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', nowms, 'LIMIT', 0, 16)) do
	local h = ARGV[3] .. inst
	local kv = redis.call('HGETALL', h)
	for i = 1, #kv, 2 do
		local id = kv[i]
		if redis.call('HINCRBY', KEYS[1], id, -tonumber(kv[i + 1])) <= 0 then
			redis.call('HDEL', KEYS[1], id)
			local doc = redis.call('HGET', KEYS[2], id)
			redis.call('HDEL', KEYS[2], id)
			if doc then gone[#gone + 1] = doc end
		end
	end
	redis.call('DEL', h)
	redis.call('ZREM', KEYS[4], inst)
end
return {added, gone}
`)

// resyncScript: ARGV instance, ttl ms, then id, count, doc triples (the
// mirror). Makes the instance's hash equal the mirror, adjusting the
// counts. Returns {documents that became active, documents that ended}.
var subsResyncScript = redis.NewScript(redishub.LuaNowMs + `
redis.call('ZADD', KEYS[4], nowms + tonumber(ARGV[2]), ARGV[1])
local up, down = {}, {}
local function adjust(id, delta, doc)
	if delta == 0 then return end
	local after = redis.call('HINCRBY', KEYS[1], id, delta)
	local before = after - delta
	if before <= 0 and after > 0 then
		redis.call('HSET', KEYS[2], id, doc)
		up[#up + 1] = doc
	elseif after <= 0 then
		redis.call('HDEL', KEYS[1], id)
		if before > 0 then
			local d = redis.call('HGET', KEYS[2], id)
			if d then down[#down + 1] = d end
		end
		redis.call('HDEL', KEYS[2], id)
	end
end
local want = {}
for i = 3, #ARGV, 3 do
	local id, n = ARGV[i], tonumber(ARGV[i + 1])
	want[id] = true
	local old = tonumber(redis.call('HGET', KEYS[3], id) or '0')
	redis.call('HSET', KEYS[3], id, n)
	adjust(id, n - old, ARGV[i + 2])
end
local kv = redis.call('HGETALL', KEYS[3])
for i = 1, #kv, 2 do
	if not want[kv[i]] then
		redis.call('HDEL', KEYS[3], kv[i])
		adjust(kv[i], -tonumber(kv[i + 1]), '')
	end
end
return {up, down}
`)

func (r *redisSubsRegistry) join(ctx context.Context, subs []mercureSub) []mercureSub {
	if len(subs) == 0 {
		return nil
	}
	r.sync.RLock()
	defer r.sync.RUnlock()
	args := make([]any, 0, 2*len(subs))
	byID := make(map[string]mercureSub, len(subs))
	r.mu.Lock()
	for _, s := range subs {
		k := s.key()
		c := r.mirror[k]
		if c == nil {
			c = &countedSub{sub: s}
			r.mirror[k] = c
		}
		c.n++
		doc, _ := json.Marshal(s)
		args = append(args, k, string(doc))
		byID[k] = s
	}
	r.mu.Unlock()
	ids, err := subsJoinScript.Run(ctx, r.rh.Client(), r.keys(), args...).StringSlice()
	if err != nil {
		r.failed("join", err)
		return nil
	}
	out := make([]mercureSub, 0, len(ids))
	for _, id := range ids {
		out = append(out, byID[id])
	}
	return out
}

func (r *redisSubsRegistry) leave(ctx context.Context, subs []mercureSub) []mercureSub {
	if len(subs) == 0 {
		return nil
	}
	r.sync.RLock()
	defer r.sync.RUnlock()
	args := make([]any, 0, len(subs))
	byID := make(map[string]mercureSub, len(subs))
	r.mu.Lock()
	for _, s := range subs {
		k := s.key()
		if c := r.mirror[k]; c != nil {
			if c.n--; c.n <= 0 {
				delete(r.mirror, k)
			}
		}
		args = append(args, k)
		byID[k] = s
	}
	r.mu.Unlock()
	ids, err := subsLeaveScript.Run(ctx, r.rh.Client(), r.keys(), args...).StringSlice()
	if err != nil {
		r.failed("leave", err)
		return nil
	}
	out := make([]mercureSub, 0, len(ids))
	for _, id := range ids {
		out = append(out, byID[id])
	}
	return out
}

// failed notes a call that Redis may or may not have applied: the next
// heartbeat rewrites this instance's counts from the mirror.
func (r *redisSubsRegistry) failed(what string, err error) {
	r.dirty.Store(true)
	if ok, suppressed := r.log.Allow(what); ok {
		r.logger.Warn("subscriptions registry: Redis call failed; repaired at the next heartbeat",
			zap.String("call", what), zap.Error(err), zap.Int("suppressed", suppressed))
	}
}

func (r *redisSubsRegistry) list(ctx context.Context) ([]mercureSub, error) {
	ctx, cancel := context.WithTimeout(ctx, r.rh.CallTimeout())
	defer cancel()
	docs, err := r.rh.Client().HVals(ctx, r.docsKey()).Result()
	if err != nil {
		return nil, err
	}
	return decodeSubs(docs), nil
}

// decodeSubs reads the records; one in another form (written by another
// version of this module) is skipped.
func decodeSubs(docs []string) []mercureSub {
	out := make([]mercureSub, 0, len(docs))
	for _, d := range docs {
		var s mercureSub
		if json.Unmarshal([]byte(d), &s) == nil && s.Match != "" && s.Subscriber != "" {
			out = append(out, s)
		}
	}
	return out
}

func (r *redisSubsRegistry) setNotify(f func([]mercureSub, bool)) { r.notify.Store(&f) }

func (r *redisSubsRegistry) publish(subs []mercureSub, active bool) {
	if f := r.notify.Load(); f != nil && len(subs) > 0 {
		(*f)(subs, active)
	}
}

// heartbeats refreshes the instance every TTL/3, from the start.
func (r *redisSubsRegistry) heartbeats(ctx context.Context) {
	defer r.done.Done()
	every := max(r.ttl/3, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *redisSubsRegistry) heartbeat(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, r.rh.CallTimeout())
	res, err := subsHeartbeatScript.Run(cctx, r.rh.Client(), r.keys(), r.inst, r.ttl.Milliseconds(), r.instPrefix()).Slice()
	cancel()
	if err != nil || len(res) != 2 {
		if ctx.Err() == nil {
			r.failed("heartbeat", err)
		}
		return
	}
	r.publish(decodeSubs(toStrings(res[1])), false)
	added, _ := res[0].(int64)
	if added == 1 || r.dirty.Swap(false) {
		r.resync(ctx)
	}
}

// resync rewrites this instance's counts in Redis from the mirror.
func (r *redisSubsRegistry) resync(ctx context.Context) {
	r.sync.Lock()
	r.mu.Lock()
	args := []any{r.inst, r.ttl.Milliseconds()}
	for id, c := range r.mirror {
		doc, _ := json.Marshal(c.sub)
		args = append(args, id, c.n, string(doc))
	}
	r.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, r.rh.CallTimeout())
	res, err := subsResyncScript.Run(cctx, r.rh.Client(), r.keys(), args...).Slice()
	cancel()
	r.sync.Unlock()
	if err != nil || len(res) != 2 {
		if ctx.Err() == nil {
			r.failed("resync", err)
		}
		return
	}
	r.publish(decodeSubs(toStrings(res[0])), true)
	r.publish(decodeSubs(toStrings(res[1])), false)
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Destruct stops the heartbeats and marks the instance expired, so that
// another instance removes, with events, what its closing streams could
// not count out themselves.
func (r *redisSubsRegistry) Destruct() error {
	r.cancel()
	r.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), r.rh.CallTimeout())
	defer cancel()
	_ = r.rh.Client().ZAdd(ctx, r.instancesKey(), redis.Z{Score: 0, Member: r.inst}).Err()
	return nil
}

var _ mercureSubsRegistry = (*redisSubsRegistry)(nil)
