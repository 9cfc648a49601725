package integration

// The Redis engine against real redis-server processes (redis_harness_test.go):
// several Caddy instances sharing hubs, resume across instances, rings
// trimmed by Redis, and Redis dying, coming back with or without its data,
// or not being there when Caddy starts.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// redisSite is the site every Redis test serves; {PORT} as usual.
const redisSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news a b c
		topic small {
			replay 5
		}
		heartbeat 200ms
	}
	sse_publish /publish
	respond /health "ok" 200
}
`

// twoInstances starts a Redis and two Caddys sharing it under a fresh prefix.
func twoInstances(t *testing.T, persist bool) (*redisProc, string, *caddyProc, *caddyProc) {
	t.Helper()
	return twoInstancesOf(t, persist, redisSite)
}

// twoInstancesOf starts a Redis and two Caddys serving site, sharing it
// under a fresh prefix, both connected to it.
func twoInstancesOf(t *testing.T, persist bool, site string) (*redisProc, string, *caddyProc, *caddyProc) {
	t.Helper()
	r := startRedis(t, persist)
	prefix := redisPrefix()
	a := startCaddyWith(t, redisGlobal(r, prefix), site)
	b := startCaddyWith(t, redisGlobal(r, prefix), site)
	// The engine connects in the background; the tests start from
	// connected instances (TestRedisDownWhenCaddyStarts covers the rest).
	redisWaitConnected(t, a, "default", true)
	redisWaitConnected(t, b, "default", true)
	return r, prefix, a, b
}

// ack is a publish the engine accepted (200): its data and its id.
type ack struct {
	i    int // index of the attempt in a publisher's loop
	data string
	id   string
}

// collectUntil reads s until the event whose data is sentinel and returns
// the events before it.
func collectUntil(s *subscriber, sentinel string) []sse.Event {
	s.t.Helper()
	var got []sse.Event
	for {
		ev := s.next()
		if ev.Data == sentinel {
			return got
		}
		got = append(got, ev)
	}
}

// checkDelivery asserts that got holds every event of want exactly once,
// in want's order and with want's ids, that ids strictly increase, and that
// anything else is one of maybe (published or not, no one can tell: the
// publish was in flight when Redis died), at most once.
func checkDelivery(t *testing.T, name string, got []sse.Event, want []ack, maybe map[string]bool) {
	t.Helper()
	k := 0
	seen := map[string]bool{}
	prevEpoch, prevSeq := "", uint64(0)
	extra := 0
	for n, ev := range got {
		if ev.Type == "reset" {
			t.Fatalf("%s: unexpected reset at event %d: %+v", name, n, ev)
		}
		epoch, seq := splitID(t, ev.LastEventID)
		if prevEpoch != "" && (epoch != prevEpoch || seq <= prevSeq) {
			t.Fatalf("%s: event %d id %s does not follow %s-%d (reorder, duplicate or epoch change)", name, n, ev.LastEventID, prevEpoch, prevSeq)
		}
		prevEpoch, prevSeq = epoch, seq
		if seen[ev.Data] {
			t.Fatalf("%s: %q delivered twice (second at event %d, id %s)", name, ev.Data, n, ev.LastEventID)
		}
		seen[ev.Data] = true
		switch {
		case k < len(want) && ev.Data == want[k].data:
			if ev.LastEventID != want[k].id {
				t.Fatalf("%s: %q arrived with id %s, its publish answered %s", name, ev.Data, ev.LastEventID, want[k].id)
			}
			k++
		case maybe[ev.Data]:
			extra++
		default:
			next := "nothing more"
			if k < len(want) {
				next = fmt.Sprintf("%q (id %s)", want[k].data, want[k].id)
			}
			t.Fatalf("%s: event %d is %q id %s, want %s: a refused event was published, or events were lost or reordered", name, n, ev.Data, ev.LastEventID, next)
		}
	}
	if k < len(want) {
		t.Fatalf("%s: acknowledged event %q (id %s) never arrived; %d of %d did", name, want[k].data, want[k].id, k, len(want))
	}
	if extra > 0 {
		t.Logf("%s: %d of the allowed extra events were delivered", name, extra)
	}
}

// An event published on either instance reaches the subscribers of both,
// with the same id; ids strictly increase; and publishes on both instances,
// in turn or at the same time, reach both in one total order. The keys in
// Redis are those of the contract.
func TestRedisPublishReachesEveryInstanceInOneOrder(t *testing.T) {
	t.Parallel()
	r := startRedis(t, false)
	prefix := redisPrefix()
	global := fmt.Sprintf("sse {\n\t\tredis %s {\n\t\t\tprefix %s\n\t\t\tbacklog 5000\n\t\t}\n\t}", r.URL(), prefix)
	a := startCaddyWith(t, global, redisSite)
	b := startCaddyWith(t, global, redisSite)
	for _, c := range []*caddyProc{a, b} {
		redisWaitConnected(t, c, "default", true)
		if st := c.stats(t, "default"); st.Engine != "redis" || !st.Connected {
			t.Fatalf("caddy on port %d: stats %+v, want engine redis, connected", c.port, st)
		}
	}
	sa := subscribe(t, client, a.base+"/events?topic=news").ready()
	sb := subscribe(t, client, b.base+"/events?topic=news").ready()
	inst := []*caddyProc{a, b}

	var acks []ack
	expectBoth := func(what string, from int) {
		t.Helper()
		for _, s := range []*subscriber{sa, sb} {
			for _, want := range acks[from:] {
				if ev := s.next(); ev.Data != want.data || ev.LastEventID != want.id || ev.Type != "" {
					t.Fatalf("%s: got %q id %s (type %q), want %q id %s", what, ev.Data, ev.LastEventID, ev.Type, want.data, want.id)
				}
			}
		}
	}
	publishSeq := func(n int, on func(i int) *caddyProc) {
		t.Helper()
		for i := 0; i < n; i++ {
			c := on(i)
			data := fmt.Sprintf("seq-%d-%d", len(acks), c.port)
			res := publishData(t, c.base+"/publish", "news", data)
			if res.Delivered != 1 {
				t.Errorf("publish on port %d delivered %d, want 1 (only this instance's subscriber)", c.port, res.Delivered)
			}
			if len(acks) > 0 {
				pe, ps := splitID(t, acks[len(acks)-1].id)
				if e, s := splitID(t, res.ID); e != pe || s <= ps {
					t.Fatalf("id %s after %s: not strictly increasing in one epoch", res.ID, acks[len(acks)-1].id)
				}
			}
			acks = append(acks, ack{i: len(acks), data: data, id: res.ID})
		}
	}

	// All on A.
	publishSeq(30, func(int) *caddyProc { return a })
	expectBoth("published on A", 0)
	// A and B in turn: one order, that of the publishes.
	publishSeq(30, func(i int) *caddyProc { return inst[i%2] })
	expectBoth("published on A and B in turn", 30)

	// A and B at the same time: both subscribers see the same sequence, in
	// which each publisher's events keep their order.
	const each = 40
	var wg sync.WaitGroup
	concurrent := make([][]ack, 2)
	for p, c := range inst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				data := fmt.Sprintf("conc-%d-%d", p, i)
				o := tryPublish(c.base+"/publish", map[string]any{"topic": "news", "data": data})
				if o.err != nil || o.status != http.StatusOK {
					t.Errorf("concurrent publish on port %d: %d %s %v", c.port, o.status, o.body, o.err)
					return
				}
				concurrent[p] = append(concurrent[p], ack{i: i, data: data, id: o.id})
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	byData := map[string]ack{}
	for _, list := range concurrent {
		for _, a := range list {
			byData[a.data] = a
		}
	}
	var seqs [2][]string
	for n, s := range []*subscriber{sa, sb} {
		next := [2]int{}
		prev := acks[len(acks)-1].id
		for j := 0; j < 2*each; j++ {
			ev := s.next()
			a, ok := byData[ev.Data]
			if !ok || ev.LastEventID != a.id {
				t.Fatalf("subscriber %d: got %q id %s, not one of the concurrent publishes (or another id)", n, ev.Data, ev.LastEventID)
			}
			pe, ps := splitID(t, prev)
			if e, sq := splitID(t, ev.LastEventID); e != pe || sq <= ps {
				t.Fatalf("subscriber %d: id %s after %s", n, ev.LastEventID, prev)
			}
			prev = ev.LastEventID
			var p int
			fmt.Sscanf(ev.Data, "conc-%d-", &p)
			if a.i != next[p] {
				t.Fatalf("subscriber %d: %q arrived where publisher %d's event %d was due", n, ev.Data, p, next[p])
			}
			next[p]++
			seqs[n] = append(seqs[n], ev.LastEventID)
		}
	}
	if strings.Join(seqs[0], ",") != strings.Join(seqs[1], ",") {
		t.Fatalf("the instances delivered different orders:\nA: %v\nB: %v", seqs[0], seqs[1])
	}

	// Redis holds the contract's keys.
	last := seqs[0][len(seqs[0])-1]
	epoch, lastSeq := splitID(t, last)
	lastData := ""
	for d, a := range byData {
		if a.id == last {
			lastData = d
		}
	}
	if n := r.XLen(t, prefix+"default:news"); n != int64(60+2*each) {
		t.Errorf("XLEN %sdefault:news = %d, want %d", prefix, n, 60+2*each)
	}
	if got := r.Get(t, prefix+"default#seq"); got != strconv.FormatUint(lastSeq, 10) {
		t.Errorf("%sdefault#seq = %q, want %d (the last id's seq)", prefix, got, lastSeq)
	}
	if got := r.Get(t, prefix+"default#epoch"); got != epoch {
		t.Errorf("%sdefault#epoch = %q, want %q (the ids' epoch)", prefix, got, epoch)
	}
	entries := r.XRange(t, prefix+"default:news")
	if len(entries) > 0 {
		e := entries[len(entries)-1]
		if e.ID != fmt.Sprintf("%d-0", lastSeq) || !strings.Contains(e.Fields["b"], "data: "+lastData) || e.Fields["t"] == "" {
			t.Errorf("last entry of the news stream is %+v, want id %d-0 with fields b (the event) and t", e, lastSeq)
		}
		if strings.Contains(e.Fields["b"], "id:") {
			t.Errorf("entry body %q carries an id line", e.Fields["b"])
		}
	}
	if n := r.XLen(t, prefix+"default#bus"); n == 0 {
		t.Errorf("%sdefault#bus is empty", prefix)
	}
}

// A subscriber that leaves instance A and resumes on instance B by
// Last-Event-ID gets exactly the events it missed (published on both), then
// live ones: no gap, no duplicate. The same for several topics at once.
func TestRedisResumeOnAnotherInstance(t *testing.T) {
	t.Parallel()
	_, _, a, b := twoInstances(t, false)

	var acks []ack
	pub := func(c *caddyProc, event map[string]any) {
		t.Helper()
		res := publishJSON(t, c.base+"/publish", event)
		acks = append(acks, ack{i: len(acks), data: fmt.Sprint(event["data"]), id: res.ID})
	}
	news := func(i int) map[string]any { return map[string]any{"topic": "news", "data": seqData(i)} }

	// One topic.
	sa := subscribe(t, client, a.base+"/events?topic=news").ready()
	for i := 0; i < 10; i++ {
		pub(a, news(i))
	}
	lastSeen := ""
	for i := 0; i < 5; i++ {
		ev := sa.next()
		if ev.Data != seqData(i) || ev.LastEventID != acks[i].id {
			t.Fatalf("on A: got %q id %s, want %q id %s", ev.Data, ev.LastEventID, seqData(i), acks[i].id)
		}
		lastSeen = ev.LastEventID
	}
	sa.close()
	for i := 10; i < 20; i++ {
		pub([]*caddyProc{a, b}[i/15], news(i)) // 10..14 on A, 15..19 on B
	}
	sb := subscribe(t, client, b.base+"/events?topic=news", "Last-Event-ID: "+lastSeen).ready()
	pub(a, news(20)) // live, from both instances
	pub(b, news(21))
	for i := 5; i < 22; i++ {
		ev := sb.next()
		if ev.Type == "reset" || ev.Data != seqData(i) || ev.LastEventID != acks[i].id {
			t.Fatalf("resumed on B from %s: got %q id %s (type %q), want %q id %s", lastSeen, ev.Data, ev.LastEventID, ev.Type, seqData(i), acks[i].id)
		}
	}
	publishData(t, a.base+"/publish", "news", "sentinel")
	if ev := sb.next(); ev.Data != "sentinel" {
		t.Fatalf("after the last expected event got %q id %s, want the sentinel (duplicate?)", ev.Data, ev.LastEventID)
	}

	// Several topics: a and b, resumed from one id on the other instance.
	acks = nil
	sm := subscribe(t, client, a.base+"/events?topic=a&topic=b").ready()
	pub(a, map[string]any{"topic": "a", "data": "m0"})
	pub(a, map[string]any{"topic": "b", "data": "m1"})
	pub(a, map[string]any{"topic": "c", "data": "m2"}) // not subscribed
	pub(a, map[string]any{"topics": []string{"a", "b"}, "data": "m3"})
	pub(a, map[string]any{"topic": "a", "data": "m4"}) // delivered, but the client leaves before reading it
	mIDs := map[string]string{}
	for _, a := range acks {
		mIDs[a.data] = a.id
	}
	for _, want := range []string{"m0", "m1", "m3"} {
		if ev := sm.next(); ev.Data != want || ev.LastEventID != mIDs[want] {
			t.Fatalf("topics a+b on A: got %q id %s, want %s", ev.Data, ev.LastEventID, want)
		}
	}
	sm.close()
	pub(b, map[string]any{"topic": "b", "data": "m5"})
	pub(b, map[string]any{"topic": "c", "data": "m6"})
	pub(b, map[string]any{"topics": []string{"a", "b", "c"}, "data": "m7"})
	pub(a, map[string]any{"topic": "a", "data": "m8"})
	sr := subscribe(t, client, b.base+"/events?topic=a&topic=b", "Last-Event-ID: "+mIDs["m3"]).ready()
	pub(a, map[string]any{"topics": []string{"b", "a"}, "data": "m9"}) // live
	pub(b, map[string]any{"topic": "b", "data": "m10"})
	for _, a := range acks {
		mIDs[a.data] = a.id
	}
	for _, want := range []string{"m4", "m5", "m7", "m8", "m9", "m10"} {
		if ev := sr.next(); ev.Type == "reset" || ev.Data != want || ev.LastEventID != mIDs[want] {
			t.Fatalf("topics a+b resumed on B from m3: got %q id %s (type %q), want %s id %s", ev.Data, ev.LastEventID, ev.Type, want, mIDs[want])
		}
	}
	publishData(t, b.base+"/publish", "a", "sentinel")
	if ev := sr.next(); ev.Data != "sentinel" {
		t.Fatalf("after m10 got %q, want the sentinel (duplicate or stray event)", ev.Data)
	}
}

// `replay 5` is enforced in Redis: the topic's stream never holds more than
// 5 entries, ids "<seq>-0"; resuming (on the other instance) from an evicted
// id yields an "evicted" reset and then only what is retained.
func TestRedisReplayTrimmedInRedis(t *testing.T) {
	t.Parallel()
	r, prefix, a, b := twoInstances(t, false)
	key := prefix + "default:small"
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, publishData(t, a.base+"/publish", "small", seqData(i)).ID)
		if n := r.XLen(t, key); n > 5 || n != int64(min(i+1, 5)) {
			t.Fatalf("after %d publishes XLEN %s = %d, want %d", i+1, key, n, min(i+1, 5))
		}
	}
	entries := r.XRange(t, key)
	for j, e := range entries {
		_, seq := splitID(t, ids[15+j])
		if e.ID != fmt.Sprintf("%d-0", seq) || !strings.Contains(e.Fields["b"], seqData(15+j)) || e.Fields["t"] == "" {
			t.Errorf("entry %d of %s is %+v, want id %d-0 holding %s with a time", j, key, e, seq, seqData(15+j))
		}
	}

	s := subscribe(t, client, b.base+"/events?topic=small", "Last-Event-ID: "+ids[2]).ready()
	reset := s.next()
	var rd resetData
	if reset.Type != "reset" || json.Unmarshal([]byte(reset.Data), &rd) != nil || rd.Reason != "evicted" || rd.LastEventID != ids[2] {
		t.Fatalf("resume from evicted %s: want an evicted reset echoing it, got %+v", ids[2], reset)
	}
	for i := 15; i < 20; i++ {
		if ev := s.next(); ev.Data != seqData(i) || ev.LastEventID != ids[i] {
			t.Fatalf("after the reset: got %q id %s, want %q id %s", ev.Data, ev.LastEventID, seqData(i), ids[i])
		}
	}
	// Resuming from the reset's id (on the other instance) resets no more:
	// nothing after it has been evicted yet.
	again := subscribe(t, client, a.base+"/events?topic=small", "Last-Event-ID: "+reset.LastEventID).ready()
	live := publishData(t, b.base+"/publish", "small", "live").ID // evicts seqData(15)
	if ev := s.next(); ev.Data != "live" || ev.LastEventID != live {
		t.Fatalf("after the replay got %+v, want the live event", ev)
	}
	for _, want := range []string{seqData(15), seqData(16), seqData(17), seqData(18), seqData(19), "live"} {
		if ev := again.next(); ev.Type == "reset" || ev.Data != want {
			t.Fatalf("resuming from the reset's id %s: got %+v, want %q without another reset", reset.LastEventID, ev, want)
		}
	}

	// The newest evicted id is no gap: everything after it is retained.
	// (The ring now holds 16..19 and live; 15 is the newest evicted.)
	edge := subscribe(t, client, a.base+"/events?topic=small", "Last-Event-ID: "+ids[15]).ready()
	publishData(t, a.base+"/publish", "small", "fresh")
	for _, want := range []string{seqData(16), seqData(17), seqData(18), seqData(19), "live", "fresh"} {
		if ev := edge.next(); ev.Type == "reset" || ev.Data != want {
			t.Fatalf("resume from %s (newest evicted): got %+v, want %q without reset", ids[15], ev, want)
		}
	}
	// One further back is a gap again.
	gap := subscribe(t, client, b.base+"/events?topic=small", "Last-Event-ID: "+ids[15]).ready()
	if ev := gap.next(); ev.Type != "reset" || !strings.Contains(ev.Data, `"evicted"`) {
		t.Fatalf("resume from %s after \"fresh\" evicted seqData(16): got %+v, want an evicted reset", ids[15], ev)
	}
	if n := r.XLen(t, key); n != 5 {
		t.Fatalf("XLEN %s = %d at the end, want 5", key, n)
	}
}

// attemptLog is a publisher loop's record, which the test awaits.
type attemptLog struct {
	mu       sync.Mutex
	attempts []attempt
	grew     chan struct{} // closed and replaced on every attempt
	inflight atomic.Int64  // index of the attempt being sent
}

type attempt struct {
	i    int
	on   int // instance index
	data string
	o    pubOutcome
}

func newAttemptLog() *attemptLog { return &attemptLog{grew: make(chan struct{})} }

func (l *attemptLog) add(a attempt) {
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	close(l.grew)
	l.grew = make(chan struct{})
	l.mu.Unlock()
}

// await waits until cond holds for the attempts so far.
func (l *attemptLog) await(t *testing.T, what string, limit time.Duration, cond func([]attempt) bool) {
	t.Helper()
	deadline := time.After(limit)
	for {
		l.mu.Lock()
		ok, grew, n := cond(l.attempts), l.grew, len(l.attempts)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-grew:
		case <-deadline:
			t.Fatalf("publisher: %s did not happen within %v (%d attempts)", what, limit, n)
		}
	}
}

func (l *attemptLog) snapshot() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.attempts...)
}

// count counts attempts from index from on with the given status on an
// instance (-1: any).
func count(as []attempt, from, on, status int) int {
	n := 0
	for _, a := range as {
		if a.i >= from && (on < 0 || a.on == on) && a.o.err == nil && a.o.status == status {
			n++
		}
	}
	return n
}

// Redis is SIGKILLed and restarted on the same port (with its data) while a
// publisher alternates between two instances: during the outage publishes
// get 503 + Retry-After: 1, open streams stay open with heartbeats, a new
// subscriber is held with heartbeats; afterwards every acknowledged event
// arrives exactly once and in order everywhere.
func TestRedisKilledAndRestartedLosesNoAcknowledgedEvent(t *testing.T) {
	t.Parallel()
	r, _, a, b := twoInstances(t, true)
	inst := []*caddyProc{a, b}
	sa := subscribe(t, client, a.base+"/events?topic=news").ready()
	sb := subscribe(t, client, b.base+"/events?topic=news").ready()

	pubs := newAttemptLog()
	stop := make(chan struct{})
	var done sync.WaitGroup
	done.Add(1)
	go func() {
		defer done.Done()
		tick := time.NewTicker(10 * time.Millisecond) // the publisher's pace, not synchronisation
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			on := i % 2
			data := seqData(i)
			pubs.inflight.Store(int64(i))
			o := tryPublish(inst[on].base+"/publish", map[string]any{"topic": "news", "data": data})
			pubs.add(attempt{i: i, on: on, data: data, o: o})
		}
	}()
	stopPublisher := sync.OnceFunc(func() { close(stop); done.Wait() })
	t.Cleanup(stopPublisher)

	pubs.await(t, "20 accepted publishes", 20*time.Second, func(as []attempt) bool { return count(as, 0, -1, 200) >= 20 })
	before := int(pubs.inflight.Load())
	r.Kill()
	after := int(pubs.inflight.Load())
	// Attempts before..after may have reached Redis before it died and
	// be answered 503, or 504 if they were sent; later ones cannot have
	// reached it.
	pubs.await(t, "503s from both instances", 20*time.Second, func(as []attempt) bool {
		return count(as, after+1, 0, 503) >= 3 && count(as, after+1, 1, 503) >= 3
	})
	redisWaitConnected(t, a, "default", false)
	redisWaitConnected(t, b, "default", false)
	for name, s := range map[string]*subscriber{"A": sa, "B": sb} {
		off := s.rawLen()
		s.waitRawAfter(off, ": heartbeat")
		if !s.isOpen() {
			t.Fatalf("stream on %s closed during the outage", name)
		}
	}
	// New subscribers during the outage: answered 200 and held with
	// heartbeats, one resuming from the 10th accepted event, one live only.
	var resumeFrom ack
	accepted := 0
	for _, at := range pubs.snapshot() {
		if at.o.status == 200 && at.o.err == nil {
			if accepted++; accepted == 10 {
				resumeFrom = ack{i: at.i, data: at.data, id: at.o.id}
				break
			}
		}
	}
	sc := subscribe(t, client, b.base+"/events?topic=news", "Last-Event-ID: "+resumeFrom.id)
	sd := subscribe(t, client, a.base+"/events?topic=news")
	for name, s := range map[string]*subscriber{"resuming on B": sc, "live on A": sd} {
		if s.resp.StatusCode != http.StatusOK || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("subscriber %s during the outage: %s %q, want 200 text/event-stream", name, s.resp.Status, s.resp.Header.Get("Content-Type"))
		}
		s.waitRaw(": heartbeat")
	}
	if st := a.stats(t, "default"); st.Connected {
		t.Fatalf("A reports connected while Redis is dead: %+v", st)
	}

	restartAt := int(pubs.inflight.Load())
	r.Start()
	pubs.await(t, "20 accepted publishes on each instance after the restart", 30*time.Second, func(as []attempt) bool {
		return count(as, restartAt, 0, 200) >= 20 && count(as, restartAt, 1, 200) >= 20
	})
	stopPublisher()
	redisWaitConnected(t, a, "default", true)
	redisWaitConnected(t, b, "default", true)

	var acks []ack
	maybe := map[string]bool{}
	refused := 0
	for _, at := range pubs.snapshot() {
		switch {
		case at.o.err == nil && at.o.status == 200:
			if at.i > after && at.i < restartAt {
				t.Errorf("publish %d was accepted (id %s) while Redis was dead", at.i, at.o.id)
			}
			acks = append(acks, ack{i: at.i, data: at.data, id: at.o.id})
		case at.i >= before && at.i <= after && at.o.status == http.StatusGatewayTimeout:
			// Sent to Redis as it died: the outcome is unknown (504).
			if !strings.Contains(string(at.o.body), `"outcome":"unknown"`) {
				t.Errorf("publish %d: 504 without the unknown outcome: %s", at.i, at.o.body)
			}
			maybe[at.data] = true
		default:
			if err := at.o.check503(); err != nil {
				t.Errorf("publish %d on instance %d: %v", at.i, at.on, err)
			}
			refused++
			if at.i >= before && at.i <= after {
				maybe[at.data] = true
			}
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%d publishes accepted, %d refused with 503", len(acks), refused)
	publishData(t, a.base+"/publish", "news", "sentinel")
	checkDelivery(t, "open stream on A", collectUntil(sa, "sentinel"), acks, maybe)
	checkDelivery(t, "open stream on B", collectUntil(sb, "sentinel"), acks, maybe)
	var afterResume, afterKill []ack
	for _, k := range acks {
		if k.i > resumeFrom.i {
			afterResume = append(afterResume, k)
		}
		if k.i > after {
			afterKill = append(afterKill, k)
		}
	}
	checkDelivery(t, "subscriber resuming on B during the outage", collectUntil(sc, "sentinel"), afterResume, maybe)
	// The live-only subscriber must get everything accepted after it came;
	// events from before the outage that A had not yet read off Redis may
	// come too.
	early := map[string]bool{}
	for k := range maybe {
		early[k] = true
	}
	for _, k := range acks {
		if k.i <= after {
			early[k.data] = true
		}
	}
	checkDelivery(t, "live subscriber on A from during the outage", collectUntil(sd, "sentinel"), afterKill, early)
}

// Redis restarted empty: the hub starts a new epoch. Open streams carry on
// with the new events (on both instances, however soon each reconnects);
// an id of the old epoch gets an "unknown" reset and then live events.
func TestRedisRestartedEmptyStartsNewEpoch(t *testing.T) {
	t.Parallel()
	r, prefix, a, b := twoInstances(t, false)
	sa := subscribe(t, client, a.base+"/events?topic=news").ready()
	sb := subscribe(t, client, b.base+"/events?topic=news").ready()
	var oldLast string
	for i := 0; i < 5; i++ {
		oldLast = publishData(t, []*caddyProc{a, b}[i%2].base+"/publish", "news", seqData(i)).ID
	}
	for _, s := range []*subscriber{sa, sb} {
		for i := 0; i < 5; i++ {
			if ev := s.next(); ev.Data != seqData(i) {
				t.Fatalf("before the restart: got %+v, want %s", ev, seqData(i))
			}
		}
	}
	oldEpoch, _ := splitID(t, oldLast)

	r.Kill()
	for _, c := range []*caddyProc{a, b} {
		o := tryPublish(c.base+"/publish", map[string]any{"topic": "news", "data": "refused"})
		if err := o.check503(); err != nil {
			t.Fatalf("publish on port %d with Redis dead: %v", c.port, err)
		}
	}
	r.Start() // empty: no persistence

	// Publish as soon as each instance accepts, without waiting for the
	// other to reconnect.
	var acks []ack
	for i := 0; i < 6; i++ {
		c := []*caddyProc{a, b}[i%2]
		data := fmt.Sprintf("new-%d", i)
		acks = append(acks, ack{i: i, data: data, id: publishUntilOK(t, c.base+"/publish", map[string]any{"topic": "news", "data": data}, 15*time.Second)})
	}
	newEpoch, _ := splitID(t, acks[0].id)
	if newEpoch == oldEpoch {
		t.Fatalf("Redis came back empty but ids keep the epoch %s (%s)", oldEpoch, acks[0].id)
	}
	if got := r.Get(t, prefix+"default#epoch"); got != newEpoch {
		t.Errorf("%sdefault#epoch = %q, want the new epoch %q", prefix, got, newEpoch)
	}
	publishData(t, a.base+"/publish", "news", "sentinel")
	for name, s := range map[string]*subscriber{"A": sa, "B": sb} {
		var got []sse.Event
		for _, ev := range collectUntil(s, "sentinel") {
			if ev.Type == "reset" { // allowed on an open stream, not required
				t.Logf("open stream on %s got %+v", name, ev)
				continue
			}
			got = append(got, ev)
		}
		checkDelivery(t, "open stream on "+name+" across the empty restart", got, acks, nil)
		if !s.isOpen() {
			t.Fatalf("open stream on %s was closed", name)
		}
	}

	for _, c := range []*caddyProc{a, b} {
		s := subscribe(t, client, c.base+"/events?topic=news", "Last-Event-ID: "+oldLast).ready()
		ev := s.next()
		var rd resetData
		if ev.Type != "reset" || json.Unmarshal([]byte(ev.Data), &rd) != nil || rd.Reason != "unknown" || rd.LastEventID != oldLast {
			t.Fatalf("resume on port %d from the old epoch's %s: want an unknown reset echoing it, got %+v", c.port, oldLast, ev)
		}
		live := fmt.Sprintf("live-%d", c.port)
		id := publishData(t, c.base+"/publish", "news", live).ID
		if ev := s.next(); ev.Data != live || ev.LastEventID != id {
			t.Fatalf("after the unknown reset on port %d: got %+v, want %s (nothing replayed)", c.port, ev, live)
		}
		s.close()
	}
	// The new epoch's ids resume normally, on either instance.
	s := subscribe(t, client, b.base+"/events?topic=news", "Last-Event-ID: "+acks[3].id).ready()
	for _, want := range []string{"new-4", "new-5", "sentinel"} {
		if ev := s.next(); ev.Type == "reset" || ev.Data != want {
			t.Fatalf("resume from the new epoch's %s: got %+v, want %s", acks[3].id, ev, want)
		}
	}
}

// Caddy starts while Redis is down: other routes answer, publish gets 503,
// a subscriber is answered 200 and held with heartbeats; once Redis is up a
// publish succeeds and reaches the held subscriber. Also the short form of
// the option (`redis <url>`, default prefix "sse:").
func TestRedisDownWhenCaddyStarts(t *testing.T) {
	t.Parallel()
	r := newRedis(t, false) // not started
	begin := time.Now()
	a := startCaddyWith(t, fmt.Sprintf("sse {\n\t\tredis %s\n\t}", r.URL()), redisSite)
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("caddy took %v to start with Redis down", took)
	}
	resp, err := client.Get(a.base + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health with Redis down: %s, want 200", resp.Status)
	}
	if err := tryPublish(a.base+"/publish", map[string]any{"topic": "news", "data": "refused"}).check503(); err != nil {
		t.Fatalf("publish with Redis down: %v", err)
	}
	if st := a.stats(t, "default"); st.Engine != "redis" || st.Connected {
		t.Errorf("stats with Redis down: %+v, want engine redis, not connected", st)
	}
	s := subscribe(t, client, a.base+"/events?topic=news")
	if s.resp.StatusCode != http.StatusOK || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("subscribe with Redis down: %s %q, want 200 text/event-stream", s.resp.Status, s.resp.Header.Get("Content-Type"))
	}
	s.waitRaw(": heartbeat")
	off := s.rawLen()
	s.waitRawAfter(off, ": heartbeat") // and another: it is held, not stuck

	r.Start()
	// The first publish accepted after Redis returns, then one once the
	// instance reports itself connected: the held subscriber gets both.
	acks := []ack{{data: "first", id: publishUntilOK(t, a.base+"/publish", map[string]any{"topic": "news", "data": "first"}, 15*time.Second)}}
	redisWaitConnected(t, a, "default", true)
	acks = append(acks, ack{data: "second", id: publishData(t, a.base+"/publish", "news", "second").ID})
	checkDelivery(t, "subscriber held while Redis was down", collectUntil(s, "second"), acks[:1], nil)
	if n := r.XLen(t, "sse:default:news"); n != 2 {
		t.Errorf("XLEN sse:default:news = %d, want 2: refused publishes must leave nothing", n)
	}
}

// One instance is cut off from Redis (a partition) while the other keeps
// publishing: the cut-off one answers 503, keeps its streams open with
// heartbeats, holds new subscribers, and once it reaches Redis again it
// catches up on everything the other published meanwhile, in order, once.
func TestRedisCutOffInstanceCatchesUp(t *testing.T) {
	t.Parallel()
	r := startRedis(t, false)
	cutter := startRedisCutter(t, r, false)
	prefix := redisPrefix()
	a := startCaddyWith(t, redisGlobal(r, prefix), redisSite)
	b := startCaddyWith(t, redisGlobalURL(cutter.url(), prefix), redisSite)
	redisWaitConnected(t, a, "default", true)
	redisWaitConnected(t, b, "default", true)
	sa := subscribe(t, client, a.base+"/events?topic=news").ready()
	sb := subscribe(t, client, b.base+"/events?topic=news").ready()

	var acks []ack
	pub := func(c *caddyProc, data string) {
		t.Helper()
		acks = append(acks, ack{i: len(acks), data: data, id: publishData(t, c.base+"/publish", "news", data).ID})
	}
	for i := 0; i < 5; i++ {
		pub([]*caddyProc{a, b}[i%2], fmt.Sprintf("before-%d", i))
	}
	if ev := sb.next(); ev.Data != "before-0" { // B is live
		t.Fatalf("B: got %+v, want before-0", ev)
	}

	cutter.setCut(true)
	redisWaitConnected(t, b, "default", false)
	if err := tryPublish(b.base+"/publish", map[string]any{"topic": "news", "data": "refused-on-b"}).check503(); err != nil {
		t.Fatalf("publish on the cut-off instance: %v", err)
	}
	for i := 0; i < 20; i++ {
		pub(a, fmt.Sprintf("during-%d", i))
	}
	off := sb.rawLen()
	sb.waitRawAfter(off, ": heartbeat")
	// New subscribers on the cut-off instance: held, then served.
	sc := subscribe(t, client, b.base+"/events?topic=news", "Last-Event-ID: "+acks[2].id)
	sd := subscribe(t, client, b.base+"/events?topic=news")
	for name, s := range map[string]*subscriber{"resuming": sc, "live": sd} {
		if s.resp.StatusCode != http.StatusOK {
			t.Fatalf("%s subscriber on the cut-off instance: %s, want 200", name, s.resp.Status)
		}
		s.waitRaw(": heartbeat")
	}
	joined := len(acks)
	for i := 0; i < 10; i++ {
		pub(a, fmt.Sprintf("later-%d", i))
	}
	if !sb.isOpen() {
		t.Fatal("the cut-off instance closed its open stream")
	}

	cutter.setCut(false)
	redisWaitConnected(t, b, "default", true)
	pub(b, "back")
	publishData(t, b.base+"/publish", "news", "sentinel")

	checkDelivery(t, "stream on A", collectUntil(sa, "sentinel"), acks, nil)
	checkDelivery(t, "stream on the cut-off B", collectUntil(sb, "sentinel"), acks[1:], nil)
	checkDelivery(t, "subscriber that resumed on B while cut off", collectUntil(sc, "sentinel"), acks[3:], nil)
	// The live subscriber must get what was published after it came; what
	// A published while B was cut off, before it came, may come too.
	early := map[string]bool{}
	for _, k := range acks[:joined] {
		early[k.data] = true
	}
	checkDelivery(t, "subscriber that joined B while cut off", collectUntil(sd, "sentinel"), acks[joined:], early)
}

// An instance that starts cut off from Redis while another publishes: a
// subscriber it holds meanwhile must get every event published after it
// came, including those published before the instance first reached Redis.
func TestRedisInstanceStartingCutOffMissesNothing(t *testing.T) {
	t.Parallel()
	r := startRedis(t, false)
	cutter := startRedisCutter(t, r, true)
	prefix := redisPrefix()
	a := startCaddyWith(t, redisGlobal(r, prefix), redisSite)
	b := startCaddyWith(t, redisGlobalURL(cutter.url(), prefix), redisSite)
	redisWaitConnected(t, a, "default", true)
	before := publishData(t, a.base+"/publish", "news", "before").ID // the hub exists in Redis

	s := subscribe(t, client, b.base+"/events?topic=news")
	sr := subscribe(t, client, b.base+"/events?topic=news", "Last-Event-ID: "+before)
	for _, s := range []*subscriber{s, sr} {
		if s.resp.StatusCode != http.StatusOK {
			t.Fatalf("subscribe on the cut-off instance: %s, want 200", s.resp.Status)
		}
		s.waitRaw(": heartbeat")
	}
	if st := b.stats(t, "default"); st.Connected {
		t.Fatalf("B reports connected through a cut link: %+v", st)
	}
	var acks []ack
	for i := 0; i < 3; i++ {
		data := fmt.Sprintf("while-cut-%d", i)
		acks = append(acks, ack{i: i, data: data, id: publishData(t, a.base+"/publish", "news", data).ID})
	}
	cutter.setCut(false)
	redisWaitConnected(t, b, "default", true)
	acks = append(acks, ack{i: 3, data: "after", id: publishData(t, a.base+"/publish", "news", "after").ID})
	checkDelivery(t, "resuming subscriber held by the instance that started cut off", collectUntil(sr, "after"), acks[:3], nil)
	// Where a subscriber joined before its instance ever reached Redis is
	// found by elapsed time with a second to spare, so an event published
	// just before it joined may come too (docs/redis.md).
	checkDelivery(t, "live subscriber held by the instance that started cut off", collectUntil(s, "after"), acks[:3], map[string]bool{"before": true})
}

// A reload that keeps the Redis settings keeps the hub: its bus reader and
// connections go on (one "connected" in the log), open streams end with a
// retry hint as on any reload, and a client resumes from Redis with
// nothing lost.
func TestRedisReloadKeepsTheHub(t *testing.T) {
	t.Parallel()
	_, _, a, b := twoInstances(t, false)
	s := subscribe(t, client, a.base+"/events?topic=news").ready()
	first := publishData(t, b.base+"/publish", "news", "one")
	if ev := s.next(); ev.Data != "one" || ev.LastEventID != first.ID {
		t.Fatalf("before the reload: %+v, want one (%s)", ev, first.ID)
	}
	epoch := a.stats(t, "default").Epoch

	a.reload(redisSite + "\nhttp://127.0.0.1:{PORT2} {\n\trespond \"other\" 200\n}\n")
	s.waitEnd()
	if !strings.Contains(s.rawString(), "retry:") {
		t.Fatalf("stream closed by the reload without a retry hint:\n%s", s.rawString())
	}
	second := publishData(t, b.base+"/publish", "news", "two")
	redisWaitConnected(t, a, "default", true)
	if st := a.stats(t, "default"); st.Epoch != epoch {
		t.Fatalf("epoch after the reload %q, want %q", st.Epoch, epoch)
	}
	if n := strings.Count(a.logs(), "redis engine connected"); n != 1 {
		t.Fatalf("%d first connections in the log, want 1: the reload made a new hub", n)
	}

	r := subscribe(t, client, a.base+"/events?topic=news", "Last-Event-ID: "+first.ID)
	if ev := r.next(); ev.Data != "two" || ev.LastEventID != second.ID {
		t.Fatalf("resumed after the reload: %+v, want two (%s)", ev, second.ID)
	}
	third := publishData(t, a.base+"/publish", "news", "three")
	if ev := r.next(); ev.Data != "three" || ev.LastEventID != third.ID {
		t.Fatalf("live after the resume: %+v, want three (%s)", ev, third.ID)
	}
}
