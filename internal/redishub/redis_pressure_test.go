package redishub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"

	"github.com/ssehub/caddy-sse/internal/redistest"
)

// Redis under memory pressure, hung, or answering too late: against a real
// redis-server started with maxmemory, SIGSTOPped, or behind a relay that
// drops its answers.

// startRedisWith starts a redis-server with extra arguments.
func startRedisWith(t *testing.T, args ...string) *redistest.Server {
	t.Helper()
	srv := redistest.New(t, false)
	srv.Args = args
	srv.Start()
	return srv
}

// fillRedis writes filler keys of size bytes until Redis has evicted at
// least evictions keys (allkeys-*) or refuses writes with OOM (noeviction).
func fillRedis(t *testing.T, srv *redistest.Server, size, evictions int) {
	t.Helper()
	val := strings.Repeat("x", size)
	base := srv.InfoInt(t, "evicted_keys")
	for i := 0; i < 1_000_000; i++ {
		_, err := srv.Do("SET", fmt.Sprintf("filler:%d", i), val)
		if err != nil {
			if strings.HasPrefix(err.Error(), "OOM") {
				return
			}
			t.Fatalf("filling Redis: %v", err)
		}
		if evictions > 0 && i%20 == 0 && srv.InfoInt(t, "evicted_keys")-base >= int64(evictions) {
			return
		}
	}
	t.Fatal("Redis never filled up")
}

// TestRedisEvictionResumesExactlyOrReset: with allkeys-lru (and, to reach
// every key, allkeys-random), Redis evicts the hub's keys among others.
// Every resume afterwards either replays exactly what the client missed on
// its topic or starts with a reset; never a silent partial replay. Several
// rounds, publishing after each eviction too, so that different keys go.
func TestRedisEvictionResumesExactlyOrReset(t *testing.T) {
	for _, policy := range []string{"allkeys-lru", "allkeys-random"} {
		t.Run(policy, func(t *testing.T) {
			srv := startRedisWith(t, "--maxmemory", "4mb", "--maxmemory-policy", policy)
			exact, resets := 0, 0
			for round := 0; round < 3; round++ {
				e, r := evictionRound(t, srv, fmt.Sprintf("ev%d:", round), policy)
				exact += e
				resets += r
				srv.MustDo(t, "FLUSHDB")
			}
			t.Logf("%s: %d resumes exact, %d with a reset", policy, exact, resets)
			if resets == 0 {
				t.Fatal("eviction lost nothing the test could see: fill more")
			}
		})
	}
}

func evictionRound(t *testing.T, srv *redistest.Server, prefix, policy string) (exact, resets int) {
	rh := newRedisHub(t, srv, prefix)
	defer rh.Close()
	awaitCond(t, "the policy in stats", func() bool { return rh.Details().Policy == policy })
	if st := rh.Stats(); !strings.Contains(st.Warning, policy) {
		t.Fatalf("stats carry no warning for %s: %+v", policy, st)
	}

	const topics, perTopic = 11, 19
	refs := make([]hub.TopicRef, topics)
	published := make([][]hub.ID, topics) // ids per topic, in order
	for i := range refs {
		refs[i] = redisTopic(fmt.Sprintf("t%d", i), 1000)
	}
	publish := func(n int) {
		for ; n > 0; n-- {
			for i, ref := range refs {
				res := publishData(t, rh, fmt.Sprintf("%d", i), ref)
				id, _ := hub.ParseID(res.ID)
				published[i] = append(published[i], id)
			}
		}
	}
	publish(perTopic)
	fillRedis(t, srv, 4096, 300)
	publish(3) // after the eviction, as a live hub would
	t.Logf("%s evicted_keys=%d; hub keys left: %v", prefix, srv.InfoInt(t, "evicted_keys"), srv.MustDo(t, "KEYS", prefix+"*"))

	// A subscriber's replay ends where this instance's bus reader has
	// delivered to; what comes after reaches it live. Resume once the
	// reader has caught up, so the replay alone holds what was missed.
	last := published[len(refs)-1][len(published[len(refs)-1])-1]
	awaitCond(t, "the bus reader to deliver the last event", func() bool {
		pos := rh.local.Position()
		return pos.Epoch != last.Epoch || pos.Seq >= last.Seq
	})

	// Resume every topic from several points: the start, the middle and
	// just before the eviction.
	for i, ref := range refs {
		for _, from := range []int{0, perTopic / 2, perTopic - 2} {
			resume := published[i][from]
			sub, rp, err := rh.Subscribe([]hub.TopicRef{ref}, resume.String(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if rp.Later != nil {
				select {
				case rp = <-rp.Later:
				case <-time.After(15 * time.Second):
					t.Fatalf("topic %s: the replay never came", ref.Name)
				}
			}
			sub.Close()
			// What the topic holds after the resume point, in the resume
			// point's epoch (after a new epoch, older ids mean nothing).
			var want []uint64
			for _, id := range published[i][from+1:] {
				if id.Epoch == resume.Epoch {
					want = append(want, id.Seq)
				}
			}
			if rp.Reset == nil {
				if got := seqs(rp.Events); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%stopic %s from %s: replayed %v with no reset, want %v", prefix, ref.Name, resume, got, want)
				}
				exact++
				continue
			}
			resets++
			if rp.Reset.ID.Epoch != resume.Epoch {
				if len(rp.Events) != 0 {
					t.Errorf("%stopic %s: reset into epoch %s replayed %d events", prefix, ref.Name, rp.Reset.ID.Epoch, len(rp.Events))
				}
				continue
			}
			// After a reset, what follows is exact from the reset's id.
			var after []uint64
			for _, s := range want {
				if s > rp.Reset.ID.Seq {
					after = append(after, s)
				}
			}
			if got := seqs(rp.Events); fmt.Sprint(got) != fmt.Sprint(after) {
				t.Errorf("%stopic %s from %s: after reset %+v replayed %v, want %v", prefix, ref.Name, resume, rp.Reset, got, after)
			}
		}
	}
	return exact, resets
}

// TestRedisLostMetadataIsUnknown: each of the hub's metadata keys deleted
// (as eviction would) makes an older resume point unknown, and the next
// publish starts a new epoch rather than reuse ids.
func TestRedisLostMetadataIsUnknown(t *testing.T) {
	for _, key := range []string{"#seq", "#meta", "#epoch"} {
		t.Run(key, func(t *testing.T) {
			srv := redistest.Start(t, false)
			rh := newRedisHub(t, srv, "lm:")
			news := redisTopic("news", 100)
			first := publishData(t, rh, "a", news)
			publishData(t, rh, "b", news)
			srv.MustDo(t, "DEL", "lm:default"+key)

			_, rp, err := rh.Subscribe([]hub.TopicRef{news}, first.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if rp.Later != nil {
				select {
				case rp = <-rp.Later:
				case <-time.After(15 * time.Second):
					t.Fatal("the replay never came")
				}
			}
			if rp.Reset == nil || rp.Reset.Reason != "unknown" {
				t.Fatalf("resume after %s was lost: reset %+v, events %s", key, rp.Reset, hubtest.Wires(rp.Events))
			}
			next := publishData(t, rh, "c", news)
			old, _ := hub.ParseID(first.ID)
			id, _ := hub.ParseID(next.ID)
			if id.Epoch == old.Epoch {
				t.Fatalf("after losing %s the hub stayed in epoch %s (id %s)", key, old.Epoch, next.ID)
			}
		})
	}
}

// TestRedisOOMRefusesEveryPublish: over maxmemory with noeviction, a
// publish to a new topic or an old one is refused whole: nothing is
// written. (Redis checks a script's writes for OOM only until its first
// write; a script that began with DEL went on writing past the limit.)
func TestRedisOOMRefusesEveryPublish(t *testing.T) {
	srv := startRedisWith(t, "--maxmemory-policy", "noeviction")
	rh := newRedisHub(t, srv, "oom:")
	awaitCond(t, "the policy in stats", func() bool { return rh.Details().Policy == "noeviction" })
	if w := rh.Stats().Warning; w != "" {
		t.Fatalf("noeviction warned: %s", w)
	}
	old := redisTopic("old", 100)
	publishData(t, rh, "warm", old) // loads the script into Redis's cache
	kept, err := rh.Publish(context.Background(), []hub.Publication{{Message: &hub.Message{Topics: []string{"old"}, Data: "keyed"}, Topics: []hub.TopicRef{old}}},
		hub.PublishOptions{IdempotencyKey: "before-oom"})
	if err != nil {
		t.Fatal(err)
	}
	// Over the limit: data, then a maxmemory below what is used (as when
	// a write allowed just under the limit went past it).
	srv.PushPastMaxmemory(t)

	dbsize := srv.MustDo(t, "DBSIZE")
	used := srv.InfoInt(t, "used_memory")
	seq := srv.Get(t, "oom:default#seq")
	for _, name := range []string{"new", "old"} {
		ref := redisTopic(name, 100)
		_, err = hubtest.Publish(rh, []hub.Publication{{Message: &hub.Message{Topics: []string{name}, Data: strings.Repeat("y", 1000)}, Topics: []hub.TopicRef{ref}}})
		if !errors.Is(err, hub.ErrEngineUnavailable) || !strings.Contains(err.Error(), "out of memory") {
			t.Fatalf("publish to %s over maxmemory: %v, want ErrEngineUnavailable saying out of memory", name, err)
		}
	}
	// A keyed publish is refused the same way and records no key.
	_, err = rh.Publish(context.Background(), []hub.Publication{{Message: &hub.Message{Topics: []string{"new"}, Data: "k"}, Topics: []hub.TopicRef{redisTopic("new", 100)}}},
		hub.PublishOptions{IdempotencyKey: "oom-key"})
	if !errors.Is(err, hub.ErrEngineUnavailable) {
		t.Fatalf("keyed publish over maxmemory: %v", err)
	}
	if got := srv.MustDo(t, "DBSIZE"); got != dbsize {
		t.Fatalf("DBSIZE went from %v to %v: a refused publish wrote keys", dbsize, got)
	}
	if got := srv.Get(t, "oom:default#seq"); got != seq {
		t.Fatalf("the counter moved from %s to %s", seq, got)
	}
	if n := srv.MustDo(t, "EXISTS", "oom:default:new"); n != int64(0) {
		t.Fatal("the new topic's stream was created")
	}
	// used_memory moves with client buffers; events written would show.
	if after := srv.InfoInt(t, "used_memory"); after > used+1500 {
		t.Fatalf("used_memory grew from %d to %d", used, after)
	}
	// A retry of a publish that was stored is answered: it writes nothing.
	again, err := rh.Publish(context.Background(), []hub.Publication{{Message: &hub.Message{Topics: []string{"old"}, Data: "keyed"}, Topics: []hub.TopicRef{old}}},
		hub.PublishOptions{IdempotencyKey: "before-oom"})
	if err != nil || !again.Replayed || again.Results[0].ID != kept.Results[0].ID {
		t.Fatalf("replay over maxmemory: %+v %v", again, err)
	}

	// Room made: publishing works again.
	srv.MustDo(t, "FLUSHDB")
	publishData(t, rh, "back", redisTopic("new", 100))
}

// TestRedisPolicyUnknown: a Redis that refuses CONFIG (managed Redis)
// reports the policy as unknown and works.
func TestRedisPolicyUnknown(t *testing.T) {
	srv := startRedisWith(t, "--rename-command", "CONFIG", "")
	rh := newRedisHub(t, srv, "pu:")
	awaitCond(t, "the policy in stats", func() bool { return rh.Details().Policy == "unknown" })
	if w := rh.Stats().Warning; w != "" {
		t.Fatalf("unknown policy warned: %s", w)
	}
	publishData(t, rh, "x", redisTopic("news", 10))
}

func TestPolicyWarning(t *testing.T) {
	for policy, risky := range map[string]bool{
		"noeviction": false, "allkeys-lru": true, "allkeys-lfu": true, "allkeys-random": true,
		"volatile-lru": true, "volatile-ttl": true, "volatile-random": true, "unknown": false,
	} {
		if got := policyWarning(policy) != ""; got != risky {
			t.Errorf("policy %s: warning %v, want %v", policy, got, risky)
		}
	}
}

// shortRedisTimings makes publishes time out after 500 ms and health
// pings run as given, for hubs created after it.
func shortRedisTimings(t *testing.T, pingEvery time.Duration) {
	t.Helper()
	call, every, timeout := redisCallTimeout, redisPingEvery, redisPingTimeout
	redisCallTimeout, redisPingEvery, redisPingTimeout = 500*time.Millisecond, pingEvery, 300*time.Millisecond
	t.Cleanup(func() { redisCallTimeout, redisPingEvery, redisPingTimeout = call, every, timeout })
}

// TestRedisHungIsNotConnected: a SIGSTOPped Redis accepts connections but
// answers nothing; the timed ping reports it as not connected, and
// connected again once it runs.
func TestRedisHungIsNotConnected(t *testing.T) {
	shortRedisTimings(t, 100*time.Millisecond)
	srv := redistest.Start(t, false)
	rh := newRedisHub(t, srv, "hung:")
	srv.Pause()
	// The bus reader alone notices only when its blocking read times out
	// (redisBlock plus the read timeout, 8 s); the ping within a second.
	paused := time.Now()
	awaitConnected(t, rh, false)
	if d := time.Since(paused); d > 3*time.Second {
		t.Fatalf("a hung Redis was reported after %v", d)
	}
	if st := rh.Stats(); st.LastError == "" {
		t.Fatalf("no last_error while hung: %+v", st)
	}
	srv.Resume()
	awaitConnected(t, rh, true)
}

// TestRedisHungPublishIsUnknown: a publish sent to a hung Redis is a 504
// (outcome unknown), and it was in fact published once Redis runs again;
// the retry with its key gets the original id and publishes nothing.
func TestRedisHungPublishIsUnknown(t *testing.T) {
	shortRedisTimings(t, time.Hour) // the ping plays no part here
	srv := redistest.Start(t, false)
	rh := newRedisHub(t, srv, "hp:")
	news := redisTopic("news", 100)
	publishData(t, rh, "warm", news)
	pubs := []hub.Publication{{Message: &hub.Message{Topics: []string{"news"}, Data: "maybe"}, Topics: []hub.TopicRef{news}}}

	srv.Pause()
	_, err := rh.Publish(context.Background(), pubs, hub.PublishOptions{IdempotencyKey: "k-hung"})
	srv.Resume()
	if !errors.Is(err, hub.ErrOutcomeUnknown) {
		t.Fatalf("publish to a hung Redis: %v, want ErrOutcomeUnknown", err)
	}
	if strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("the error names Redis's address: %v", err)
	}
	if n := srv.XLen(t, "hp:default:news"); n != 2 {
		t.Fatalf("the topic holds %d events, want 2: the timed-out publish ran once Redis resumed", n)
	}
	out, err := rh.Publish(context.Background(), pubs, hub.PublishOptions{IdempotencyKey: "k-hung"})
	if err != nil || !out.Replayed || len(out.Results) != 1 {
		t.Fatalf("retry with the key: %+v, %v", out, err)
	}
	if want := srv.XRange(t, "hp:default:news")[1].ID; out.Results[0].ID != (hub.ID{Epoch: rh.local.Position().Epoch, Seq: mustSeq(t, want)}).String() {
		t.Fatalf("retry answered %s, the published event is %s", out.Results[0].ID, want)
	}
	if n := srv.XLen(t, "hp:default:news"); n != 2 {
		t.Fatalf("the retry published again: %d events", n)
	}
}

func mustSeq(t *testing.T, streamID string) uint64 {
	t.Helper()
	seq, ok := streamSeq(streamID)
	if !ok {
		t.Fatalf("bad stream id %q", streamID)
	}
	return seq
}

// answerDropper relays TCP to Redis; once cut, it stops passing Redis's
// answers and closes the client's connection at the first one: a
// connection that breaks after the command was sent.
type answerDropper struct {
	ln     net.Listener
	target string
	cut    atomic.Bool
	wg     sync.WaitGroup
}

func newAnswerDropper(t *testing.T, target string) *answerDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &answerDropper{ln: ln, target: target}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.wg.Add(1)
			go d.relay(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); d.wg.Wait() })
	return d
}

func (d *answerDropper) relay(c net.Conn) {
	defer d.wg.Done()
	defer c.Close()
	r, err := net.Dial("tcp", d.target)
	if err != nil {
		return
	}
	defer r.Close()
	go func() { _, _ = io.Copy(r, c); r.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if d.cut.Load() {
				return // the answer is lost with the connection
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestRedisBrokenAfterSendIsUnknown: the connection breaks after the
// publish reached Redis: 504, and it was published.
func TestRedisBrokenAfterSendIsUnknown(t *testing.T) {
	shortRedisTimings(t, time.Hour)
	srv := redistest.Start(t, false)
	d := newAnswerDropper(t, srv.Addr)
	rh, err := NewRedisHub("default", RedisConfig{URL: "redis://" + d.ln.Addr().String() + "/0", Prefix: "br:"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rh.Close() })
	awaitConnected(t, rh, true)
	news := redisTopic("news", 100)
	publishData(t, rh, "warm", news)

	d.cut.Store(true)
	_, err = hubtest.Publish(rh, []hub.Publication{{Message: &hub.Message{Topics: []string{"news"}, Data: "sent"}, Topics: []hub.TopicRef{news}}})
	if !errors.Is(err, hub.ErrOutcomeUnknown) {
		t.Fatalf("publish whose answer was lost: %v, want ErrOutcomeUnknown", err)
	}
	if n := srv.XLen(t, "br:default:news"); n != 2 {
		t.Fatalf("the topic holds %d events, want 2", n)
	}
}

// TestRedisIdempotency: a key is answered with the original result on the
// same instance and on another, publishes nothing again, is refused with
// another body, lives for the window and is bounded in count.
func TestRedisIdempotency(t *testing.T) {
	srv := redistest.Start(t, false)
	a, b := newRedisHub(t, srv, "id:"), newRedisHub(t, srv, "id:")
	news := redisTopic("news", 100)
	sub, _, err := a.Subscribe([]hub.TopicRef{news}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	batch := func(data ...string) []hub.Publication {
		var pubs []hub.Publication
		for _, d := range data {
			pubs = append(pubs, hub.Publication{Message: &hub.Message{Topics: []string{"news"}, Data: d}, Topics: []hub.TopicRef{news}})
		}
		return pubs
	}
	first, err := a.Publish(context.Background(), batch("x", "y"), hub.PublishOptions{IdempotencyKey: "order-1"})
	if err != nil || first.Replayed || len(first.Results) != 2 || first.Results[0].Delivered != 1 {
		t.Fatalf("first publish: %+v %v", first, err)
	}
	for name, e := range map[string]*RedisHub{"same instance": a, "other instance": b} {
		again, err := e.Publish(context.Background(), batch("x", "y"), hub.PublishOptions{IdempotencyKey: "order-1"})
		if err != nil || !again.Replayed || fmt.Sprint(again.Results) != fmt.Sprint(first.Results) {
			t.Fatalf("%s: retry answered %+v (%v), want replayed %+v", name, again, err, first.Results)
		}
	}
	if n := srv.XLen(t, "id:default:news"); n != 2 {
		t.Fatalf("retries published: the topic holds %d events", n)
	}
	if _, err := b.Publish(context.Background(), batch("other"), hub.PublishOptions{IdempotencyKey: "order-1"}); !errors.Is(err, hub.ErrIdempotencyConflict) {
		t.Fatalf("same key, another body: %v, want ErrIdempotencyConflict", err)
	}
	ttl, _ := srv.MustDo(t, "PTTL", "id:default#idem:order-1").(int64)
	if ttl <= 0 || ttl > hub.DefaultIdempotencyWindow.Milliseconds() {
		t.Fatalf("the key's record has PTTL %d, want at most the window", ttl)
	}

	// At most 3 keys: the oldest are forgotten, and its key publishes anew.
	a.SetIdempotency(time.Minute, 3)
	for i := 2; i <= 5; i++ {
		if _, err := a.Publish(context.Background(), batch(strconv.Itoa(i)), hub.PublishOptions{IdempotencyKey: fmt.Sprintf("order-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.MustDo(t, "ZCARD", "id:default#idem"); n != int64(3) {
		t.Fatalf("%v keys kept, want 3", n)
	}
	if n := srv.MustDo(t, "EXISTS", "id:default#idem:order-1", "id:default#idem:order-2"); n != int64(0) {
		t.Fatalf("the oldest keys' records are still there (%v)", n)
	}
	again, err := a.Publish(context.Background(), batch("x", "y"), hub.PublishOptions{IdempotencyKey: "order-1"})
	if err != nil || again.Replayed || again.Results[0].ID == first.Results[0].ID {
		t.Fatalf("a forgotten key: %+v %v, want a new publish", again, err)
	}
}
