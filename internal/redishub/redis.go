package redishub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/logthrottle"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RedisConfig puts hubs in Redis, shared by every Caddy instance that uses
// the same Redis and prefix.
type RedisConfig struct {
	// redis:// or rediss:// URL, with optional username, password and
	// database number ("redis://user:pass@host:6379/0").
	URL string `json:"url"`
	// Prepended to every key, so deployments can share one Redis.
	// Default: "sse:".
	Prefix string `json:"prefix,omitempty"`
	// Events kept in each hub's bus stream, so that an instance that lost
	// Redis for a while can catch up on what others published meanwhile.
	// In Redis it costs about backlog × (event size + 350 bytes) per hub.
	// Default: 10000.
	Backlog int `json:"backlog,omitempty"`
}

// Defaults of the Redis engine.
const (
	DefaultRedisPrefix  = "sse:"
	DefaultRedisBacklog = 10000

	redisBlock      = 5 * time.Second        // one bus read waits this long for news
	redisMaxBackoff = 2 * time.Second        // reconnect backoff cap (docs/redis.md)
	redisMinBackoff = 100 * time.Millisecond // first reconnect delay
	redisReadBatch  = 1000                   // bus entries read at once
)

// Timings of the Redis engine, variables so that tests can shorten them
// (before creating a hub, which copies them).
var (
	redisCallTimeout = 3 * time.Second // one publish or replay read
	redisPingEvery   = time.Second     // health check interval
	redisPingTimeout = time.Second     // a ping slower than this marks Redis down
)

// ParseRedisURL checks a Redis URL and returns go-redis options for it.
func ParseRedisURL(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redis url: %v", err)
	}
	// A publish must not be sent twice: a retried script could publish an
	// event twice. The engine retries what is safe itself.
	opts.MaxRetries = -1
	opts.Protocol = 2
	opts.DisableIdentity = true
	opts.ContextTimeoutEnabled = true
	// While Redis is down a publish should answer 503 at once, not after
	// five dial attempts; the bus reader does the patient retrying.
	opts.DialerRetries = 1
	if opts.DialTimeout == 0 || opts.DialTimeout > time.Second {
		opts.DialTimeout = time.Second
	}
	// Waiting for a pooled connection ends before a call's deadline, with
	// an error that says nothing was sent: a publish that fails while
	// waiting is a 503, not an unknown outcome.
	if opts.PoolTimeout == 0 || opts.PoolTimeout > time.Second {
		opts.PoolTimeout = time.Second
	}
	return opts, nil
}

// go-redis logs (dial failures, pool events) through one global logger. They
// repeat what the engine reports once per outage, so they go to debug.
var routeRedisLog sync.Once

type redisLog struct{ l *zap.Logger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	if c := r.l.Check(zap.DebugLevel, "go-redis"); c != nil {
		c.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

// RedisHub is an Engine whose ids, rings and fan-out go through Redis. Each
// instance runs one bus reader per hub: a blocking XREAD on one connection
// that hands every event, in id order, to the local Hub, which fans it out
// to this instance's subscribers. Publishes and replay reads share a small
// connection pool. No connection is held per subscriber.
type RedisHub struct {
	local   *hub.Hub
	rdb     *redis.Client
	base    string // prefix + hub name
	backlog int
	logger  *zap.Logger

	callTimeout time.Duration
	logLimit    logthrottle.Throttle // publish failures: a line a second

	mu          sync.Mutex
	connected   bool  // the bus reader is connected
	pingErr     error // the last health ping failed (a hung Redis)
	lastErr     string
	policy      string // maxmemory-policy, "unknown" when CONFIG is refused
	warning     string // what the policy puts at risk
	idemWindow  time.Duration
	idemKeys    int
	waiting     []*pendingReplay
	waitingKept int       // waiters left by the last sweep of ended streams
	firstEpoch  string    // adopted on the first connection
	firstSeq    uint64    // position adopted on the first connection
	earlyJoin   time.Time // when the first subscriber joined before the first connection

	kick   chan struct{} // wakes the replayer
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// pendingReplay is a resuming subscriber whose replay could not be read yet.
type pendingReplay struct {
	sub    *hub.Subscription
	refs   []hub.TopicRef
	resume string
	opts   hub.SubscribeOptions // Earliest, Predecessor; Filter is sub's
	pos    hub.ID               // where it joined the live events
	later  chan hub.Replay
}

// NewRedisHub connects a hub to Redis. It does not wait for Redis: the bus
// reader connects in the background, with backoff, so Caddy starts and
// serves other routes while Redis is down.
func NewRedisHub(name string, cfg RedisConfig, logger *zap.Logger) (*RedisHub, error) {
	opts, err := ParseRedisURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	routeRedisLog.Do(func() { redis.SetLogger(redisLog{logger.Named("redis")}) })
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = DefaultRedisBacklog
	}
	ctx, cancel := context.WithCancel(context.Background())
	rh := &RedisHub{
		local:   hub.NewRemoteHub(),
		rdb:     redis.NewClient(opts),
		base:    cfg.Prefix + name,
		backlog: cfg.Backlog,
		logger:  logger.With(zap.String("hub", name)),
		kick:    make(chan struct{}, 1),
		cancel:  cancel,

		callTimeout: redisCallTimeout,
		idemWindow:  hub.DefaultIdempotencyWindow,
		idemKeys:    hub.DefaultIdempotencyKeys,
	}
	rh.done.Add(3)
	go rh.readBus(ctx)
	go rh.replayer(ctx)
	go rh.pinger(ctx, redisPingEvery, redisPingTimeout)
	return rh, nil
}

func (rh *RedisHub) topicKey(name string) string { return rh.base + ":" + name }
func (rh *RedisHub) seqKey() string              { return rh.base + "#seq" }
func (rh *RedisHub) epochKey() string            { return rh.base + "#epoch" }
func (rh *RedisHub) busKey() string              { return rh.base + "#bus" }
func (rh *RedisHub) metaKey() string             { return rh.base + "#meta" }
func (rh *RedisHub) idemKey(key string) string   { return rh.base + "#idem:" + key }
func (rh *RedisHub) idemSetKey() string          { return rh.base + "#idem" }

// SetIdempotency sets the key window and the most keys kept: the TTL and
// the count bound of the keys this instance records in Redis.
func (rh *RedisHub) SetIdempotency(window time.Duration, keys int) {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	if window > 0 {
		rh.idemWindow = window
	}
	if keys > 0 {
		rh.idemKeys = keys
	}
}

func (rh *RedisHub) idempotency() (time.Duration, int) {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	return rh.idemWindow, rh.idemKeys
}

// Healthy reports whether the bus reader is connected and Redis answered
// the last ping in time.
func (rh *RedisHub) Healthy() bool {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	return rh.connected && rh.pingErr == nil
}

// Publish stores the batch in Redis with one script call, which assigns the
// ids. The events reach subscribers, here and on every other instance,
// through the bus. delivered counts this instance's subscribers, at the
// moment the script is sent (so that it can be recorded with an
// idempotency key and answered again by any instance). Their filters
// (SubscribeOptions.Filter) are not asked: the event does not exist yet,
// and a filter may key its cached decisions on the event. The metrics'
// delivered counter, counted at delivery, counts filtered-in ones only.
func (rh *RedisHub) Publish(ctx context.Context, pubs []hub.Publication, opts hub.PublishOptions) (hub.PublishOutcome, error) {
	if len(pubs) == 0 {
		return hub.PublishOutcome{}, nil
	}
	if err := hub.ValidatePublicIDs(pubs); err != nil {
		return hub.PublishOutcome{}, err
	}
	// Known to be unreachable or hung: refuse without sending, so the
	// publisher learns that nothing was published (503) instead of waiting
	// for an unknown outcome (504).
	if !rh.Healthy() {
		return hub.PublishOutcome{}, fmt.Errorf("%w: redis is unreachable; nothing was published", hub.ErrEngineUnavailable)
	}
	index := make(map[string]int)
	var topics []hub.TopicRef
	for _, p := range pubs {
		for _, ref := range p.Topics {
			if _, ok := index[ref.Name]; !ok {
				topics = append(topics, ref)
				index[ref.Name] = len(topics)
			}
		}
	}
	delivered := make([]int, len(pubs))
	counts := make([]string, len(pubs))
	for i, p := range pubs {
		names := make([]string, len(p.Topics))
		for j, ref := range p.Topics {
			names[j] = ref.Name
		}
		delivered[i] = rh.local.LocalSubscribers(names)
		counts[i] = strconv.Itoa(delivered[i])
	}
	key, fp := opts.IdempotencyKey, ""
	window, maxKeys := rh.idempotency()
	if key != "" {
		fp = hub.PublishFingerprint(pubs)
	}
	keys := []string{rh.seqKey(), rh.epochKey(), rh.busKey(), rh.metaKey(), rh.idemKey(key), rh.idemSetKey()}
	pos := rh.local.Position()
	// A fresh candidate each time: an instance that proposed the epoch
	// before Redis lost it must not bring the same one back.
	args := []any{hub.NewEpoch(), pos.Epoch, pos.Seq, rh.backlog,
		key, fp, window.Milliseconds(), maxKeys, strings.Join(counts, ","), len(topics)}
	for _, ref := range topics {
		keys = append(keys, rh.topicKey(ref.Name))
		args = append(args, ref.Name, ref.Ring.Replay, ref.Ring.ReplaySize, ref.Ring.ReplayAge.Milliseconds())
	}
	args = append(args, len(pubs))
	for _, p := range pubs {
		m := p.Message
		hash := ""
		if m.HashID {
			hash = "1"
		}
		args = append(args, hub.EncodeBody(m), m.Meta, m.PublicID, hash, len(p.Topics))
		for _, ref := range p.Topics {
			args = append(args, index[ref.Name])
		}
	}
	// Not the request's context: a publisher hanging up must not turn a
	// publish already sent into one whose outcome nobody knows.
	c, cancel := context.WithTimeout(context.Background(), rh.callTimeout)
	defer cancel()
	res, err := publishScript.Run(c, rh.rdb, keys, args...).Slice()
	if err != nil {
		return hub.PublishOutcome{}, rh.publishError(err)
	}
	status, _ := res[0].(string)
	switch {
	case status == "conflict":
		return hub.PublishOutcome{}, hub.ErrIdempotencyConflict
	case status == "reserved" && len(res) == 2:
		id, _ := res[1].(string)
		return hub.PublishOutcome{}, fmt.Errorf("%w: %q", hub.ErrReservedID, hub.Truncate(id, 64))
	case status == "published" && len(res) == 3:
	case status == "replayed" && len(res) == 4:
		csv, _ := res[3].(string)
		delivered = delivered[:0]
		for _, c := range strings.Split(csv, ",") {
			n, _ := strconv.Atoi(c)
			delivered = append(delivered, n)
		}
	default:
		rh.logger.Error("unexpected reply of the publish script", zap.Any("reply", res))
		return hub.PublishOutcome{}, fmt.Errorf("%w: unexpected reply from redis", hub.ErrOutcomeUnknown)
	}
	if status == "published" {
		for _, p := range pubs {
			for _, ref := range p.Topics {
				rh.local.Counters().Topic(hub.DeclaredName(ref)).AddPublished(1)
			}
		}
	}
	epoch, _ := res[1].(string)
	first, _ := res[2].(int64)
	results := make([]hub.PublishResult, len(delivered))
	for i := range results {
		results[i] = hub.PublishResult{ID: hub.ID{Epoch: epoch, Seq: uint64(first) + uint64(i)}.String(), Delivered: delivered[i]}
	}
	return hub.PublishOutcome{Results: results, Replayed: status == "replayed"}, nil
}

// publishError tells a publish that Redis refused, or that never reached
// it (503: nothing was published), from one sent without an answer (504:
// it may have been). The detail, with Redis's address, goes to the log,
// not to the publisher.
func (rh *RedisHub) publishError(err error) error {
	var rerr redis.Error
	var out error
	switch {
	case redis.IsOOMError(err):
		out = fmt.Errorf("%w: redis is out of memory (maxmemory) and refuses writes; nothing was published", hub.ErrEngineUnavailable)
	case errors.As(err, &rerr):
		out = fmt.Errorf("%w: redis refused the publish; nothing was published", hub.ErrEngineUnavailable)
	case notSent(err):
		out = fmt.Errorf("%w: redis is unreachable; nothing was published", hub.ErrEngineUnavailable)
	default:
		out = fmt.Errorf("%w: redis did not answer within %v; the publish may or may not have been stored", hub.ErrOutcomeUnknown, rh.callTimeout)
	}
	if ok, suppressed := rh.logLimit.Allow("publish"); ok {
		rh.logger.Warn("publish failed", zap.NamedError("answer", out), zap.Error(err), zap.Int("suppressed", suppressed))
	}
	return out
}

// notSent reports whether a failed call is known never to have reached
// Redis whole: no connection, or the command's write failed (Redis runs
// nothing from a partial command). A read that failed or timed out after
// the write, the connection closed meanwhile, is not.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "write") {
		return true
	}
	return errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED)
}

// Subscribe registers the subscriber locally first, at the position P of
// the last event this instance delivered; every later event reaches it
// through the bus. Its replay is then read from Redis up to P, so replay
// and live events neither overlap nor leave a gap. When Redis cannot be
// read, the replay arrives later (Replay.Later) and the stream waits.
func (rh *RedisHub) Subscribe(refs []hub.TopicRef, resume string, queueLen int) (*hub.Subscription, hub.Replay, error) {
	return rh.SubscribeWith(refs, hub.SubscribeOptions{Resume: resume, QueueLen: queueLen})
}

// SubscribeWith is Subscribe with every option (internal/hub/engine.go). The filter is
// the local subscriber's, set before it can be offered anything; the
// replay read from Redis is filtered the same way.
func (rh *RedisHub) SubscribeWith(refs []hub.TopicRef, opts hub.SubscribeOptions) (*hub.Subscription, hub.Replay, error) {
	resume := opts.Resume
	if opts.Earliest {
		resume = ""
	}
	localRefs := make([]hub.TopicRef, len(refs))
	for i, ref := range refs {
		ref.Ring = hub.RingConfig{} // rings live in Redis
		localRefs[i] = ref
	}
	if rh.local.Position().Epoch == "" {
		// Before the first connection this instance has no position to
		// register at; the time lets connect find where this subscriber
		// joined the bus. Noted before registering, so connect sees it.
		rh.mu.Lock()
		if rh.earlyJoin.IsZero() {
			rh.earlyJoin = time.Now()
		}
		rh.mu.Unlock()
	}
	sub, pos, err := rh.local.RegisterWith(localRefs, opts.QueueLen, opts.Filter)
	if err != nil {
		return nil, hub.Replay{}, err
	}
	if resume == "" && !opts.Earliest && !wantsInitial(refs) {
		return sub, hub.Replay{}, nil
	}
	p := &pendingReplay{sub: sub, refs: refs, resume: resume, opts: opts, pos: pos, later: make(chan hub.Replay, 1)}
	// Known to be down or hung: wait for the replayer rather than for a
	// timeout.
	if pos.Epoch != "" && rh.Healthy() {
		ctx, cancel := context.WithTimeout(context.Background(), rh.callTimeout)
		rp, ok, err := rh.readReplay(ctx, p)
		cancel()
		if err == nil && ok {
			return sub, rp, nil
		}
	}
	rh.enqueue(p)
	return sub, hub.Replay{Later: p.later}, nil
}

// readReplay reads what p missed, up to where it joined. It reports false
// when the replay cannot be decided yet: Redis is in an epoch the local hub
// has not adopted.
func (rh *RedisHub) readReplay(ctx context.Context, p *pendingReplay) (hub.Replay, bool, error) {
	pos := p.pos
	if pos.Epoch == "" { // joined before the first connection
		rh.mu.Lock()
		pos = hub.ID{Epoch: rh.firstEpoch, Seq: rh.firstSeq}
		rh.mu.Unlock()
		if pos.Epoch == "" {
			return hub.Replay{}, false, nil
		}
	}
	if p.resume == "" && !p.opts.Earliest {
		return rh.readInitial(ctx, p, pos)
	}
	// The resume point: after seq from (0 for earliest), or after the
	// earliest event bearing public id pid, which the script looks up.
	var from uint64
	pid := ""
	if !p.opts.Earliest {
		hubID := strings.TrimPrefix(p.resume, "#")
		id, parsed := hub.ParseID(hubID)
		switch {
		case parsed && id.Epoch == pos.Epoch:
			from = id.Seq
		case hubID == p.resume && hub.ValidPublicID(p.resume) == nil:
			pid = p.resume
		default:
			return p.unknown(pos), true, nil
		}
	}
	keys := []string{rh.seqKey(), rh.epochKey(), rh.metaKey()}
	args := []any{from, pos.Seq, len(p.refs), pid}
	for _, ref := range p.refs {
		keys = append(keys, rh.topicKey(ref.Name))
		args = append(args, ref.Name, ref.Ring.ReplayAge.Milliseconds())
	}
	res, err := replayScript.Run(ctx, rh.rdb, keys, args...).Slice()
	if err != nil {
		return hub.Replay{}, false, err
	}
	if len(res) < 3 {
		return hub.Replay{}, false, fmt.Errorf("unexpected replay reply %v", res)
	}
	epoch, _ := res[0].(string)
	current, _ := res[1].(int64)
	resumed, _ := res[2].(int64)
	if current < 0 && epoch == pos.Epoch {
		// Redis lost the hub's metadata (evicted): what this epoch held
		// cannot be told, so the resume point is unknown. The next write
		// starts a new epoch.
		return p.unknown(pos), true, nil
	}
	if epoch != pos.Epoch {
		// Redis moved to another epoch (it came back empty). Once the local
		// hub has adopted it, the old resume point is unknown there and the
		// subscriber continues with the new epoch's events from its start.
		if now := rh.local.Position(); now.Epoch == epoch && epoch != "" {
			return p.unknown(hub.ID{Epoch: epoch}), true, nil
		}
		return hub.Replay{}, false, nil
	}
	if resumed < 0 { // the public id is not retained by the topics
		return p.unknown(pos), true, nil
	}
	from = uint64(resumed)
	if from > uint64(current) {
		return p.unknown(pos), true, nil
	}
	var evicted uint64
	var lists [][]*hub.Event
	var ctrs []*hub.TopicCounters
	for i := 3; i+1 < len(res); i += 2 {
		// Earliest asks for what is retained: what was evicted before was
		// never asked for, so it is no reset.
		if e, _ := res[i].(int64); uint64(e) > from && !p.opts.Earliest {
			evicted = max(evicted, uint64(e))
		}
		if list := hub.FilterEvents(streamEvents(epoch, res[i+1]), p.sub.Filter); len(list) > 0 {
			lists = append(lists, list)
			ctrs = append(ctrs, rh.local.Counters().Topic(hub.DeclaredName(p.refs[(i-3)/2])))
		}
	}
	rp := hub.AssembleReplay(epoch, p.resume, lists, evicted)
	hub.CountReplay(p.sub, rp, lists, ctrs)
	if p.opts.Predecessor > 0 && !p.opts.Earliest {
		rp.Predecessor = hub.PredecessorOf(p.resume, rp)
	}
	// Live events the subscriber already has through the replay, or that
	// the reset declared missed, must not follow it: a reader lagging the
	// publisher's instance may queue them after the resume point.
	rh.local.SkipThrough(p.sub, max(from, evicted))
	return rp, true, nil
}

// streamEvents reads a script's list of stream entries (luaEntry: id,
// body, meta, public id, hash flag) as events of epoch.
func streamEvents(epoch string, v any) []*hub.Event {
	entries, _ := v.([]any)
	var list []*hub.Event
	for j := 0; j+4 < len(entries); j += 5 {
		rid, _ := entries[j].(string)
		body, _ := entries[j+1].(string)
		meta, _ := entries[j+2].(string)
		pid, _ := entries[j+3].(string)
		hash, _ := entries[j+4].(string)
		seq, ok := streamSeq(rid)
		if !ok {
			continue
		}
		list = append(list, newRemoteEvent(hub.ID{Epoch: epoch, Seq: seq}, time.Time{}, body, meta, pid, hash != ""))
	}
	return list
}

// newRemoteEvent builds an event read from Redis: its body (the event
// without its id line) gets the id line its subscribers must see.
func newRemoteEvent(id hub.ID, t time.Time, body, meta, pid string, hash bool) *hub.Event {
	return &hub.Event{ID: id, Time: t, Wire: hub.WithID(id, pid, hash, []byte(body)), Meta: meta, PublicID: pid, HashID: hash}
}

// unknown is the replay of a resume point that cannot be honoured, counted.
func (p *pendingReplay) unknown(pos hub.ID) hub.Replay {
	rp := hub.UnknownReset(p.resume, pos)
	hub.CountReplay(p.sub, rp, nil, nil)
	return rp
}

// wantsInitial reports whether a subscriber with no resume point gets
// events first: one of its topics has replay_on_connect.
func wantsInitial(refs []hub.TopicRef) bool {
	for _, ref := range refs {
		if ref.Ring.OnConnect > 0 {
			return true
		}
	}
	return false
}

// readInitial reads the initial state of a subscriber with no resume
// point: the newest replay_on_connect events of each topic up to where it
// joined, which every later event follows live. It reports false while
// Redis is in an epoch the local hub has not adopted.
func (rh *RedisHub) readInitial(ctx context.Context, p *pendingReplay, pos hub.ID) (hub.Replay, bool, error) {
	keys := []string{rh.epochKey(), rh.metaKey()}
	args := []any{pos.Seq, len(p.refs)}
	for _, ref := range p.refs {
		keys = append(keys, rh.topicKey(ref.Name))
		args = append(args, ref.Name, ref.Ring.OnConnect, ref.Ring.ReplayAge.Milliseconds())
	}
	res, err := initialScript.Run(ctx, rh.rdb, keys, args...).Slice()
	if err != nil {
		return hub.Replay{}, false, err
	}
	if len(res) < 1 {
		return hub.Replay{}, false, fmt.Errorf("unexpected initial state reply %v", res)
	}
	epoch, _ := res[0].(string)
	if epoch != pos.Epoch {
		// Redis moved to another epoch: once the local hub has adopted it,
		// the subscriber starts with its live events; its old history is
		// gone.
		if now := rh.local.Position(); now.Epoch == epoch && epoch != "" {
			return hub.Replay{}, true, nil
		}
		return hub.Replay{}, false, nil
	}
	var lists [][]*hub.Event
	var ctrs []*hub.TopicCounters
	for i, v := range res[1:] {
		if list := hub.FilterEvents(streamEvents(epoch, v), p.sub.Filter); len(list) > 0 {
			lists = append(lists, list)
			ctrs = append(ctrs, rh.local.Counters().Topic(hub.DeclaredName(p.refs[i])))
		}
	}
	rp := hub.Replay{Events: hub.MergeEvents(lists)}
	hub.CountReplay(p.sub, rp, lists, ctrs)
	return rp, true, nil
}

// streamSeq reads the seq of a stream entry id "<seq>-0".
func streamSeq(id string) (uint64, bool) {
	s, _, _ := strings.Cut(id, "-")
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil
}

// enqueue adds a replay to wait for Redis. Waiters whose streams ended are
// dropped from time to time, so a long outage does not pile them up.
func (rh *RedisHub) enqueue(p *pendingReplay) {
	rh.mu.Lock()
	if len(rh.waiting) >= 64 && len(rh.waiting) >= 2*rh.waitingKept {
		kept := rh.waiting[:0]
		for _, w := range rh.waiting {
			if w.sub.Active() {
				kept = append(kept, w)
			}
		}
		clear(rh.waiting[len(kept):])
		rh.waiting = kept
		rh.waitingKept = len(kept)
	}
	rh.waiting = append(rh.waiting, p)
	rh.mu.Unlock()
	rh.wake()
}

func (rh *RedisHub) wake() {
	select {
	case rh.kick <- struct{}{}:
	default:
	}
}

// replayer reads the replays that had to wait for Redis, oldest first,
// whenever something may have changed: a new waiter, a reconnection, or
// once a second.
func (rh *RedisHub) replayer(ctx context.Context) {
	defer rh.done.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rh.kick:
		case <-tick.C:
		}
		for {
			rh.mu.Lock()
			if len(rh.waiting) == 0 || !rh.connected || rh.pingErr != nil {
				rh.mu.Unlock()
				break
			}
			p := rh.waiting[0]
			rh.mu.Unlock()
			if p.sub.Active() { // an ended stream's waiter is just removed
				c, cancel := context.WithTimeout(ctx, rh.callTimeout)
				rp, ok, err := rh.readReplay(c, p)
				cancel()
				if err != nil || !ok {
					break // Redis is not ready for it yet; retry later
				}
				p.later <- rp
			}
			rh.mu.Lock()
			// By identity: a sweep in enqueue may have moved it.
			if i := slices.Index(rh.waiting, p); i >= 0 {
				rh.waiting = slices.Delete(rh.waiting, i, i+1)
			}
			rh.mu.Unlock()
		}
	}
}

// readBus is the instance's one reader of the hub's bus: it connects (with
// backoff while Redis is away), then reads events in id order from where it
// left off and delivers them locally. After an outage it catches up from
// its position, so nothing another instance published meanwhile is missed.
func (rh *RedisHub) readBus(ctx context.Context) {
	defer rh.done.Done()
	backoff := redisMinBackoff
	connected := false
	pause := func(err error) bool {
		connected = false
		rh.setConnected(false, err)
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(backoff*2, redisMaxBackoff)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		if !connected {
			if err := rh.connect(ctx); err != nil {
				if !pause(err) {
					return
				}
				continue
			}
			connected = true
			backoff = redisMinBackoff
			rh.setConnected(true, nil)
		}
		pos := rh.local.Position()
		streams, err := rh.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{rh.busKey(), fmt.Sprintf("%d-0", pos.Seq)},
			Count:   redisReadBatch,
			Block:   redisBlock,
		}).Result()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, redis.Nil):
			// Quiet for a while: make sure Redis is still in our epoch (it
			// may have restarted empty, or lost the hub's metadata, without
			// breaking our connection). The epoch script also starts a new
			// epoch when the metadata is gone.
			epoch, gerr := rh.currentEpoch(ctx, pos)
			if gerr != nil {
				if !pause(gerr) {
					return
				}
			} else if epoch != pos.Epoch {
				connected = false // connect adopts the new epoch
			}
			continue
		case err != nil:
			if !pause(err) {
				return
			}
			continue
		}
		for _, st := range streams {
			if !rh.deliver(pos, st.Messages) {
				connected = false
			}
		}
	}
}

// runEpoch runs the epoch script: the hub's epoch, last seq and Redis's
// clock (ms), a new epoch when Redis has none or lost the hub's metadata.
func (rh *RedisHub) runEpoch(ctx context.Context, pos hub.ID) (epoch string, seq, redisNow int64, err error) {
	res, err := epochScript.Run(ctx, rh.rdb, []string{rh.seqKey(), rh.epochKey(), rh.busKey(), rh.metaKey()},
		hub.NewEpoch(), pos.Epoch, pos.Seq).Slice()
	if err != nil {
		return "", 0, 0, err
	}
	if len(res) != 3 {
		return "", 0, 0, fmt.Errorf("unexpected epoch reply %v", res)
	}
	epoch, _ = res[0].(string)
	seq, _ = res[1].(int64)
	redisNow, _ = res[2].(int64)
	return epoch, seq, redisNow, nil
}

func (rh *RedisHub) currentEpoch(ctx context.Context, pos hub.ID) (string, error) {
	c, cancel := context.WithTimeout(ctx, rh.callTimeout)
	defer cancel()
	epoch, _, _, err := rh.runEpoch(c, pos)
	return epoch, err
}

// connect learns the hub's epoch and position from Redis and adopts them.
func (rh *RedisHub) connect(ctx context.Context) error {
	c, cancel := context.WithTimeout(ctx, rh.callTimeout)
	defer cancel()
	pos := rh.local.Position()
	epoch, seq, redisNow, err := rh.runEpoch(c, pos)
	if err != nil {
		return err
	}
	rh.checkPolicy(c)
	switch {
	case pos.Epoch == "":
		start := uint64(seq)
		rh.mu.Lock()
		early := rh.earlyJoin
		rh.mu.Unlock()
		if !early.IsZero() {
			// Subscribers joined before this instance could reach Redis, and
			// events published since then (through other instances) are
			// theirs. Where they joined is found by elapsed time, measured
			// here and mapped onto Redis's clock, with a second to spare: no
			// clocks need to agree. At worst they get a few events from
			// just before they joined.
			cutoff := redisNow - time.Since(early).Milliseconds() - 1000
			if start, err = rh.busSeqBefore(c, cutoff, uint64(seq)); err != nil {
				return err
			}
		}
		rh.local.Adopt(epoch, start)
		rh.mu.Lock()
		rh.firstEpoch, rh.firstSeq = epoch, start
		rh.mu.Unlock()
		rh.logger.Info("redis engine connected", zap.String("epoch", epoch), zap.Uint64("seq", uint64(seq)),
			zap.Uint64("delivering_after", start))
	case pos.Epoch != epoch:
		// Redis lost the hub (a restart without persistence, a failover to
		// an empty replica). Ids of the old epoch mean nothing now; open
		// streams continue with the new epoch's events from its start.
		rh.local.Adopt(epoch, 0)
		rh.logger.Warn("redis has a new epoch for this hub; earlier ids will get a reset",
			zap.String("old_epoch", pos.Epoch), zap.String("epoch", epoch))
	default:
		rh.logger.Info("redis engine reconnected; catching up",
			zap.Uint64("from_seq", pos.Seq), zap.Uint64("redis_seq", uint64(seq)))
	}
	return nil
}

// busSeqBefore returns the seq of the newest bus event published before
// cutoff (Redis time, ms), reading the bus backwards; when every retained
// event is newer, the seq before the oldest one.
func (rh *RedisHub) busSeqBefore(ctx context.Context, cutoff int64, last uint64) (uint64, error) {
	upper := "+"
	oldest := last + 1
	for {
		msgs, err := rh.rdb.XRevRangeN(ctx, rh.busKey(), upper, "-", 200).Result()
		if err != nil {
			return 0, err
		}
		for _, m := range msgs {
			seq, ok := streamSeq(m.ID)
			if !ok {
				continue
			}
			t, _ := m.Values["t"].(string)
			if ms, err := strconv.ParseInt(t, 10, 64); err == nil && ms < cutoff {
				return seq, nil
			}
			oldest = seq
		}
		if len(msgs) < 200 {
			return oldest - 1, nil
		}
		upper = "(" + msgs[len(msgs)-1].ID
	}
}

// deliver hands bus entries to local subscribers. It reports false when
// the entries belong to another epoch, so the reader reconnects and adopts
// it. A hole in the seqs means the bus was trimmed past this instance's
// position while it was away: the subscribers here cannot be told exactly
// what they missed, so they are dropped and resume by id from the rings,
// which can.
func (rh *RedisHub) deliver(pos hub.ID, msgs []redis.XMessage) bool {
	evs := make([]hub.RemoteEvent, 0, len(msgs))
	next := pos.Seq + 1
	for _, m := range msgs {
		seq, ok := streamSeq(m.ID)
		if !ok {
			continue
		}
		epoch, _ := m.Values["e"].(string)
		if epoch != pos.Epoch {
			rh.local.Deliver(evs)
			return false
		}
		if seq != next {
			rh.local.Deliver(evs)
			evs = evs[:0]
			n := rh.local.DropAll()
			rh.logger.Warn("redis bus was trimmed past this instance's position; subscribers dropped to resume by id",
				zap.Uint64("expected_seq", next), zap.Uint64("got_seq", seq), zap.Int("dropped", n))
		}
		next = seq + 1
		body, _ := m.Values["b"].(string)
		topics, _ := m.Values["k"].(string)
		meta, _ := m.Values["m"].(string)
		pid, _ := m.Values["i"].(string)
		hash, _ := m.Values["h"].(string)
		evs = append(evs, hub.RemoteEvent{
			Event:  newRemoteEvent(hub.ID{Epoch: epoch, Seq: seq}, time.Now(), body, meta, pid, hash != ""),
			Topics: strings.Split(topics, "\n"),
		})
	}
	rh.local.Deliver(evs)
	return true
}

// checkPolicy reads maxmemory-policy: Redis must not evict the hub's keys
// (what a loss means is in redis_scripts.go). A managed Redis may refuse
// CONFIG; the policy is then "unknown", which is not an error.
func (rh *RedisHub) checkPolicy(ctx context.Context) {
	policy, warning := "unknown", ""
	vals, err := rh.rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err == nil && vals["maxmemory-policy"] != "" {
		policy = vals["maxmemory-policy"]
		warning = policyWarning(policy)
	}
	rh.mu.Lock()
	changed := policy != rh.policy
	rh.policy, rh.warning = policy, warning
	rh.mu.Unlock()
	switch {
	case warning != "":
		rh.logger.Error("redis may evict this hub's keys; set maxmemory-policy noeviction",
			zap.String("maxmemory_policy", policy), zap.String("risk", warning))
	case changed && err != nil:
		rh.logger.Warn("cannot read redis maxmemory-policy (CONFIG GET refused); make sure it is noeviction",
			zap.Error(err))
	}
}

// policyWarning says what a maxmemory-policy puts at risk; "" for none.
func policyWarning(policy string) string {
	switch {
	case strings.HasPrefix(policy, "allkeys-"):
		return "maxmemory-policy " + policy + " can evict any of the hub's keys: resumes then get a reset, and retried publishes may be published twice"
	case strings.HasPrefix(policy, "volatile-"):
		return "maxmemory-policy " + policy + " can evict the hub's keys that expire: rings of topics with replay_age (resumes then get a reset) and idempotency keys (retried publishes may be published twice)"
	}
	return ""
}

// pinger checks, every interval, that Redis answers a PING within timeout.
// The bus reader alone would not notice a hung Redis (its blocking read
// just waits), and neither would stats.
func (rh *RedisHub) pinger(ctx context.Context, every, timeout time.Duration) {
	defer rh.done.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c, cancel := context.WithTimeout(ctx, timeout)
		err := rh.rdb.Ping(c).Err()
		cancel()
		if ctx.Err() != nil {
			return
		}
		rh.mu.Lock()
		was := rh.pingErr
		rh.pingErr = err
		if err != nil {
			rh.lastErr = err.Error()
		}
		rh.mu.Unlock()
		switch {
		case err != nil && was == nil:
			rh.logger.Warn("redis does not answer a ping in time; reported as not connected", zap.Duration("timeout", timeout), zap.Error(err))
		case err == nil && was != nil:
			rh.logger.Info("redis answers pings again")
			rh.wake()
		}
	}
}

func (rh *RedisHub) setConnected(up bool, err error) {
	rh.mu.Lock()
	was := rh.connected
	rh.connected = up
	if err != nil {
		rh.lastErr = err.Error()
	} else if up {
		rh.lastErr = ""
	}
	rh.mu.Unlock()
	switch {
	case up && !was:
		rh.wake()
	case !up && was:
		rh.logger.Warn("redis unreachable; publishing answers 503 and streams wait until it returns", zap.Error(err))
	case !up && err != nil:
		rh.logger.Debug("redis still unreachable", zap.Error(err))
	}
}

// Prune forgets local topics no longer declared. Rings live in Redis, so
// local topics keep no ring settings.
func (rh *RedisHub) Prune(keep func(name string) (hub.RingConfig, bool)) {
	rh.local.Prune(func(name string) (hub.RingConfig, bool) {
		_, ok := keep(name)
		return hub.RingConfig{}, ok
	})
}

// Counters are the local hub's: this instance's publishes, deliveries and
// subscribers.
func (rh *RedisHub) Counters() *hub.HubCounters { return rh.local.Counters() }

// Stats reports the local subscribers and whether Redis is reachable.
func (rh *RedisHub) Stats() hub.Stats {
	st := rh.local.Stats()
	st.Engine = "redis"
	rh.mu.Lock()
	st.Connected = rh.connected && rh.pingErr == nil
	st.LastError = rh.lastErr
	st.Warning = rh.warning
	rh.mu.Unlock()
	return st
}

// Details is what the Redis engine reports beside hub.Stats (the admin
// API shows both as one object).
type Details struct {
	// Resuming subscribers waiting for Redis to return their replay.
	WaitingReplay int `json:"waiting_replay,omitempty"`
	// Redis's maxmemory-policy ("unknown" when CONFIG GET is refused);
	// Stats.Warning says when it can evict the hub's keys.
	Policy string `json:"redis_policy,omitempty"`
}

// Details reports the engine's own state.
func (rh *RedisHub) Details() Details {
	rh.mu.Lock()
	defer rh.mu.Unlock()
	return Details{WaitingReplay: len(rh.waiting), Policy: rh.policy}
}

// Close stops the bus reader, drops the local subscribers and closes the
// connections. Closing the client first ends a bus read blocked in Redis at
// once, so a shutdown does not wait out the read's block time.
func (rh *RedisHub) Close() error {
	rh.cancel()
	err := rh.rdb.Close()
	rh.done.Wait()
	_ = rh.local.Close()
	return err
}

// Topics lists the topics this instance holds: those with local
// subscribers. Their rings are in Redis; Topic reads them.
func (rh *RedisHub) Topics(after string, limit int) ([]hub.TopicInfo, bool) {
	return rh.local.Topics(after, limit)
}

// Topic describes a topic: this instance's subscribers and counts, and
// what Redis retains of it (its stream's length, first and last ids, and
// the bytes the publish script accounted for). It is held when either this
// instance or Redis has something of it.
func (rh *RedisHub) Topic(ctx context.Context, name string) (hub.TopicInfo, bool) {
	info, held := rh.local.Topic(ctx, name)
	info.Name = name
	ctx, cancel := context.WithTimeout(ctx, rh.callTimeout)
	defer cancel()
	pipe := rh.rdb.Pipeline()
	xinfo := pipe.XInfoStream(ctx, rh.topicKey(name))
	size := pipe.HGet(ctx, rh.metaKey(), "b:"+name)
	epoch := pipe.Get(ctx, rh.epochKey())
	_, _ = pipe.Exec(ctx)
	st, err := xinfo.Result()
	if err != nil || st.Length == 0 {
		return info, held
	}
	info.Held = true
	info.Retained = int(st.Length)
	info.RetainedB, _ = size.Int64()
	ep, _ := epoch.Result()
	if seq, ok := streamSeq(st.FirstEntry.ID); ok {
		info.FirstID = hub.ID{Epoch: ep, Seq: seq}.String()
	}
	if seq, ok := streamSeq(st.LastEntry.ID); ok {
		info.LastID = hub.ID{Epoch: ep, Seq: seq}.String()
	}
	return info, true
}

// Interface guards
var (
	_ hub.Engine            = (*RedisHub)(nil)
	_ hub.IdempotencySetter = (*RedisHub)(nil)
)

// Client is the engine's Redis client, for state a route keeps beside the
// engine's (sse_mercure's subscriptions registry); keys under KeyBase.
func (rh *RedisHub) Client() *redis.Client { return rh.rdb }

// KeyBase is the prefix of every key of this hub: the configured prefix and
// the hub's name. A route's own keys start with it and then '#'.
func (rh *RedisHub) KeyBase() string { return rh.base }

// CallTimeout bounds each call to Redis.
func (rh *RedisHub) CallTimeout() time.Duration { return rh.callTimeout }
