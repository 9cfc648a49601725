package redishub

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/caddy-sse/internal/redistest"
)

// These tests run the Redis engine against a real redis-server, without
// Caddy: two RedisHubs on one Redis are two instances.

func newRedisHub(t *testing.T, srv *redistest.Server, prefix string) *RedisHub {
	t.Helper()
	rh, err := NewRedisHub("default", RedisConfig{URL: srv.URL(), Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rh.Close() })
	awaitConnected(t, rh, true)
	return rh
}

func awaitConnected(t *testing.T, rh *RedisHub, want bool) {
	t.Helper()
	awaitCond(t, fmt.Sprintf("connected=%v", want), func() bool { return rh.Stats().Connected == want })
}

// awaitCond polls a condition that an event outside the test's control
// (a reconnect, a background reader) makes true; the limit is a safety net.
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func redisTopic(name string, replay int) hub.TopicRef {
	return hub.TopicRef{Name: name, Ring: hub.RingConfig{Replay: replay, ReplaySize: hub.DefaultReplaySize}}
}

func publishData(t *testing.T, e hub.Engine, data string, refs ...hub.TopicRef) hub.PublishResult {
	t.Helper()
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Name
	}
	res, err := hubtest.Publish(e, []hub.Publication{{Message: &hub.Message{Topics: names, Data: data}, Topics: refs}})
	if err != nil {
		t.Fatalf("publish %q: %v", data, err)
	}
	return res[0]
}

func seqs(evs []*hub.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.ID.Seq
	}
	return out
}

func TestRedisTwoInstancesShareOneOrder(t *testing.T) {
	srv := redistest.Start(t, false)
	a, b := newRedisHub(t, srv, "p1:"), newRedisHub(t, srv, "p1:")
	news := redisTopic("news", 100)
	subA, _, err := a.Subscribe([]hub.TopicRef{news}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	subB, _, err := b.Subscribe([]hub.TopicRef{news}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	const each = 100
	var wg sync.WaitGroup
	for _, e := range []*RedisHub{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := hubtest.Publish(e, []hub.Publication{{Message: &hub.Message{Topics: []string{"news"}, Data: "x"}, Topics: []hub.TopicRef{news}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	gotA, gotB := hubtest.TakeN(t, subA, 2*each), hubtest.TakeN(t, subB, 2*each)
	for i := range gotA {
		if gotA[i].ID != gotB[i].ID {
			t.Fatalf("event %d: %v on A, %v on B", i, gotA[i].ID, gotB[i].ID)
		}
		if i > 0 && gotA[i].ID.Seq <= gotA[i-1].ID.Seq {
			t.Fatalf("ids not increasing: %v", seqs(gotA))
		}
	}
	if gotA[0].ID.Epoch == "" || string(gotA[0].Wire) != "id: "+gotA[0].ID.String()+"\ndata: x\n\n" {
		t.Fatalf("wire %q", gotA[0].Wire)
	}
}

func TestRedisResumeOnAnotherInstance(t *testing.T) {
	srv := redistest.Start(t, false)
	a, b := newRedisHub(t, srv, "p2:"), newRedisHub(t, srv, "p2:")
	news, misc := redisTopic("news", 100), redisTopic("misc", 100)
	var ids []string
	for i := 1; i <= 10; i++ {
		refs := []hub.TopicRef{news}
		switch i % 3 {
		case 1:
			refs = []hub.TopicRef{misc}
		case 2:
			refs = []hub.TopicRef{news, misc}
		}
		ids = append(ids, publishData(t, a, strconv.Itoa(i), refs...).ID)
	}
	// Resume on B from event 4, subscribed to both topics: 5..10, each
	// once. What B's bus reader has delivered comes from the replay, the
	// rest live, and together they are exactly the missed events.
	sub, rp, err := b.Subscribe([]hub.TopicRef{news, misc}, ids[3], 100)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Reset != nil || rp.Later != nil {
		t.Fatalf("unexpected reset %+v / later", rp.Reset)
	}
	got := append([]*hub.Event(nil), rp.Events...)
	if n := 6 - len(got); n > 0 {
		got = append(got, hubtest.TakeN(t, sub, n)...)
	}
	var data []string
	for _, e := range got {
		data = append(data, hubtest.DataOf(e))
	}
	if s := strings.Join(data, ","); s != "5,6,7,8,9,10" {
		t.Fatalf("replay then live %s, want 5..10 (replayed %d)", s, len(rp.Events))
	}
	publishData(t, a, "11", misc)
	live := hubtest.TakeN(t, sub, 1)
	if hubtest.DataOf(live[0]) != "11" || live[0].ID.Seq != got[5].ID.Seq+1 {
		t.Fatalf("live %q after %v", live[0].Wire, got[5].ID)
	}
}

func TestRedisResumeAheadOfTheLocalReader(t *testing.T) {
	srv := redistest.Start(t, false)
	a := newRedisHub(t, srv, "p3:")
	news := redisTopic("news", 100)
	first := publishData(t, a, "1", news)
	awaitCond(t, "A's reader to deliver 1", func() bool { return a.local.Position().Seq == 1 })
	sub, pos, err := a.local.RegisterWith([]hub.TopicRef{{Name: "news"}}, 100, nil)
	if err != nil || pos.Seq != 1 {
		t.Fatalf("register: %v at %v", err, pos)
	}
	// Events 2 and 3 are published; the client already saw 2 elsewhere.
	publishData(t, a, "2", news)
	publishData(t, a, "3", news)
	id2 := hub.ID{Epoch: pos.Epoch, Seq: 2}
	p := &pendingReplay{sub: sub, refs: []hub.TopicRef{news}, resume: id2.String(), pos: pos}
	rp, ok, err := a.readReplay(t.Context(), p)
	if err != nil || !ok || rp.Reset != nil || len(rp.Events) != 0 {
		t.Fatalf("replay up to position 1 from 2: %+v ok=%v err=%v", rp, ok, err)
	}
	got := hubtest.TakeN(t, sub, 1)
	if hubtest.DataOf(got[0]) != "3" {
		t.Fatalf("live after resume from 2: %s (first was %s)", hubtest.Wires(got), first.ID)
	}
}

func TestRedisRingTrimmedInRedis(t *testing.T) {
	srv := redistest.Start(t, false)
	a := newRedisHub(t, srv, "p4:")
	news := redisTopic("news", 5)
	var ids []string
	for i := 1; i <= 20; i++ {
		ids = append(ids, publishData(t, a, strconv.Itoa(i), news).ID)
	}
	if n := srv.XLen(t, "p4:default:news"); n != 5 {
		t.Fatalf("XLEN %d, want 5", n)
	}
	// The whole replay then comes from Redis, none of it live.
	awaitCond(t, "the bus reader to deliver 20", func() bool { return a.local.Position().Seq == 20 })
	_, rp, err := a.Subscribe([]hub.TopicRef{news}, ids[2], 100)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Reset == nil || rp.Reset.Reason != "evicted" || rp.Reset.ID.String() != ids[14] {
		t.Fatalf("reset %+v, want evicted at %s", rp.Reset, ids[14])
	}
	if len(rp.Events) != 5 || hubtest.DataOf(rp.Events[0]) != "16" {
		t.Fatalf("replay after reset: %s", hubtest.Wires(rp.Events))
	}
	// Bytes: a budget of about two events keeps two.
	small := hub.TopicRef{Name: "small", Ring: hub.RingConfig{Replay: 100, ReplaySize: 2 * (64 + 20)}}
	for i := 0; i < 5; i++ {
		publishData(t, a, "0123456789", small)
	}
	if n := srv.XLen(t, "p4:default:small"); n != 2 {
		t.Fatalf("XLEN small %d, want 2", n)
	}
}

func TestRedisRingAge(t *testing.T) {
	srv := redistest.Start(t, false)
	a := newRedisHub(t, srv, "p5:")
	const key = "p5:default:aged"
	aged := hub.TopicRef{Name: "aged", Ring: hub.RingConfig{Replay: 100, ReplaySize: hub.DefaultReplaySize, ReplayAge: 300 * time.Millisecond}}
	start := publishData(t, a, "old", aged).ID
	last := publishData(t, a, "old too", aged).ID
	// The stream expires with its age, so a topic nobody publishes to any
	// more does not stay in Redis.
	if ttl, _ := srv.MustDo(t, "PTTL", key).(int64); ttl <= 0 || ttl > 300 {
		t.Fatalf("PTTL %d ms, want up to the 300 ms age", ttl)
	}
	// Age is a matter of time passing: await the expiry Redis performs.
	awaitCond(t, "the stream to expire", func() bool { return srv.MustDo(t, "EXISTS", key) == int64(0) })
	_, rp, err := a.Subscribe([]hub.TopicRef{aged}, start, 10)
	if err != nil || rp.Reset == nil || rp.Reset.Reason != "evicted" || rp.Reset.ID.String() != last || len(rp.Events) != 0 {
		t.Fatalf("resume after expiry: %v, reset %+v, %d events; want evicted at %s", err, rp.Reset, len(rp.Events), last)
	}
	fresh := publishData(t, a, "new", aged)
	if n := srv.XLen(t, key); n != 1 {
		t.Fatalf("XLEN %d after a publish, want 1", n)
	}
	_, rp, err = a.Subscribe([]hub.TopicRef{aged}, last, 10)
	if err != nil || rp.Reset != nil || len(rp.Events) > 1 || (len(rp.Events) == 1 && rp.Events[0].ID.String() != fresh.ID) {
		t.Fatalf("resume from the last aged event: %v, reset %+v, %s", err, rp.Reset, hubtest.Wires(rp.Events))
	}
}

func TestRedisOutageAndReturn(t *testing.T) {
	srv := redistest.Start(t, true)
	a, b := newRedisHub(t, srv, "p6:"), newRedisHub(t, srv, "p6:")
	news := redisTopic("news", 100)
	live, _, err := b.Subscribe([]hub.TopicRef{news}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	before := publishData(t, a, "before", news)
	hubtest.TakeN(t, live, 1)

	srv.Kill()
	_, err = hubtest.Publish(a, []hub.Publication{{Message: &hub.Message{Topics: []string{"news"}, Data: "lost"}, Topics: []hub.TopicRef{news}}})
	if !errors.Is(err, hub.ErrEngineUnavailable) {
		t.Fatalf("publish with Redis down: %v, want ErrEngineUnavailable", err)
	}
	// What a publisher is told carries no internal address (it is logged).
	if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("the error names Redis's address: %v", err)
	}
	awaitConnected(t, b, false)
	// A resuming subscriber during the outage waits for its replay.
	waiting, rp, err := b.Subscribe([]hub.TopicRef{news}, before.ID, 100)
	if err != nil || rp.Later == nil {
		t.Fatalf("subscribe during outage: %v, later=%v", err, rp.Later)
	}
	if d := b.Details(); d.WaitingReplay != 1 {
		t.Fatalf("details during outage: %d waiting for their replay, want 1", d.WaitingReplay)
	}

	srv.Restart()
	awaitConnected(t, a, true)
	after := publishData(t, a, "after", news)
	select {
	case got := <-rp.Later:
		if got.Reset != nil || len(got.Events) != 0 {
			t.Fatalf("replay after the outage: reset %+v, %s", got.Reset, hubtest.Wires(got.Events))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the waiting replay never came")
	}
	if got := hubtest.TakeN(t, waiting, 1); got[0].ID.String() != after.ID {
		t.Fatalf("waiting subscriber got %s, want %s", got[0].ID, after.ID)
	}
	if d := b.Details(); d.WaitingReplay != 0 {
		t.Fatalf("details after the replay came: %d still waiting", d.WaitingReplay)
	}
	if got := hubtest.TakeN(t, live, 1); got[0].ID.String() != after.ID {
		t.Fatalf("open subscriber got %s, want %s", got[0].ID, after.ID)
	}
	id, _ := hub.ParseID(after.ID)
	if id.Epoch != b.local.Position().Epoch || id.Seq != 2 {
		t.Fatalf("after a restart with persistence the epoch and count continue: %s", after.ID)
	}
}

func TestRedisComesBackEmpty(t *testing.T) {
	srv := redistest.Start(t, false)
	a := newRedisHub(t, srv, "p7:")
	news := redisTopic("news", 100)
	live, _, err := a.Subscribe([]hub.TopicRef{news}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	old := publishData(t, a, "old", news)
	hubtest.TakeN(t, live, 1)
	srv.Restart() // no persistence: everything is gone
	awaitCond(t, "a new epoch", func() bool {
		st := a.Stats()
		return st.Connected && st.Epoch != "" && !strings.HasPrefix(old.ID, st.Epoch+"-")
	})
	fresh := publishData(t, a, "fresh", news)
	if got := hubtest.TakeN(t, live, 1); got[0].ID.String() != fresh.ID || !strings.HasSuffix(fresh.ID, "-1") {
		t.Fatalf("open stream after the new epoch got %s, want %s (seq 1)", got[0].ID, fresh.ID)
	}
	_, rp, err := a.Subscribe([]hub.TopicRef{news}, old.ID, 100)
	if err != nil || rp.Reset == nil || rp.Reset.Reason != "unknown" {
		t.Fatalf("resume from the old epoch: %v, reset %+v", err, rp.Reset)
	}
}

// A hole in the bus (trimmed past an instance's position while it was
// away) drops that instance's subscribers, so they resume from the rings.
func TestRedisBusGapDropsSubscribers(t *testing.T) {
	srv := redistest.Start(t, false)
	a := newRedisHub(t, srv, "p8:")
	sub, pos, err := a.local.RegisterWith([]hub.TopicRef{{Name: "news"}}, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []redis.XMessage{{
		ID:     fmt.Sprintf("%d-0", pos.Seq+5),
		Values: map[string]any{"b": "data: x\n\n", "k": "news", "e": pos.Epoch},
	}}
	if !a.deliver(pos, msgs) {
		t.Fatal("deliver refused entries of its own epoch")
	}
	select {
	case <-sub.Done():
	default:
		t.Fatal("subscriber kept after a gap in the bus")
	}
	if a.Stats().DroppedSlow != 1 {
		t.Fatalf("stats %+v", a.Stats())
	}
}

func TestRedisStartsWithRedisDown(t *testing.T) {
	srv := redistest.Start(t, false)
	srv.Kill()
	rh, err := NewRedisHub("default", RedisConfig{URL: srv.URL(), Prefix: "p9:"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rh.Close() })
	news := redisTopic("news", 100)
	sub, rp, err := rh.Subscribe([]hub.TopicRef{news}, "", 10)
	if err != nil || rp.Later != nil {
		t.Fatalf("fresh subscribe with Redis down: %v later=%v", err, rp.Later)
	}
	if _, err := hubtest.Publish(rh, []hub.Publication{{Message: &hub.Message{Topics: []string{"news"}, Data: "x"}, Topics: []hub.TopicRef{news}}}); !errors.Is(err, hub.ErrEngineUnavailable) {
		t.Fatalf("publish: %v", err)
	}
	awaitCond(t, "the hub to report the failed connection", func() bool { return rh.Stats().LastError != "" })
	if st := rh.Stats(); st.Connected {
		t.Fatalf("stats while down: %+v", st)
	}
	srv.Restart()
	awaitConnected(t, rh, true)
	res := publishData(t, rh, "x", news)
	if got := hubtest.TakeN(t, sub, 1); got[0].ID.String() != res.ID {
		t.Fatalf("got %s, want %s", got[0].ID, res.ID)
	}
	if res.Delivered != 1 {
		t.Fatalf("delivered %d, want 1", res.Delivered)
	}
}

func TestRedisBadURL(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:6379/notadb"} {
		if _, err := NewRedisHub("default", RedisConfig{URL: u}, nil); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}

func TestValidHubName(t *testing.T) {
	for _, ok := range []string{"default", "a", "team-1.events_x~y@z"} {
		if err := hub.ValidHubName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a:b", "a/b", "a#b", "a b", strings.Repeat("x", 65)} {
		if hub.ValidHubName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The URL carries the password and the database: the engine authenticates
// and writes to that database; a wrong password is reported, not hidden.
func TestRedisURLPasswordAndDatabase(t *testing.T) {
	srv := redistest.New(t, false)
	srv.Password = "s3cret"
	srv.Start()
	base := strings.TrimPrefix(srv.URL(), "redis://")
	base = strings.TrimSuffix(base, "/0")
	rh, err := NewRedisHub("default", RedisConfig{URL: "redis://:s3cret@" + base + "/3", Prefix: "pw:"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rh.Close() })
	awaitConnected(t, rh, true)
	publishData(t, rh, "x", redisTopic("news", 10))
	if n, _ := srv.Do("XLEN", "pw:default:news"); n != int64(0) {
		t.Fatalf("db 0 holds the topic (%v); the URL asked for db 3", n)
	}
	if n, err := srv.Do("EVAL", "redis.call('SELECT', 3) return redis.call('XLEN', KEYS[1])", "1", "pw:default:news"); err != nil || n != int64(1) {
		t.Fatalf("XLEN in db 3: %v %v, want 1", n, err)
	}

	wrong, err := NewRedisHub("default", RedisConfig{URL: "redis://:nope@" + base + "/3", Prefix: "pw:"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wrong.Close() })
	awaitCond(t, "the wrong password to be reported", func() bool {
		return strings.Contains(wrong.Stats().LastError, "WRONGPASS")
	})
	if wrong.Stats().Connected {
		t.Fatal("connected with a wrong password")
	}
}

// TestRedisReplayOnConnect: on another instance than the publisher's, a
// subscriber without a resume point gets the newest replay_on_connect
// events of each topic from Redis, merged in id order, an event of two
// topics once, then live events; a resuming one gets what it missed.
func TestRedisReplayOnConnect(t *testing.T) {
	srv := redistest.Start(t, false)
	a, b := newRedisHub(t, srv, "p9:"), newRedisHub(t, srv, "p9:")
	news, misc := redisTopic("news", 100), redisTopic("misc", 100)
	news.Ring.OnConnect, misc.Ring.OnConnect = 3, 2
	var ids []string
	for i, refs := range [][]hub.TopicRef{{news}, {misc}, {news, misc}, {news}, {misc}, {news}} { // 1..6
		ids = append(ids, publishData(t, a, strconv.Itoa(i+1), refs...).ID)
	}
	awaitCond(t, "B's reader to deliver 6", func() bool { return b.local.Position().Seq == 6 })
	sub, rp, err := b.Subscribe([]hub.TopicRef{news, misc}, "", 100)
	if err != nil || rp.Later != nil || rp.Reset != nil {
		t.Fatalf("subscribe: %v, later %v, reset %+v", err, rp.Later != nil, rp.Reset)
	}
	// news' newest 3: 3 4 6; misc's newest 2: 3 5.
	if got := seqs(rp.Events); !slices.Equal(got, []uint64{3, 4, 5, 6}) {
		t.Fatalf("initial state %v, want [3 4 5 6]: %s", got, hubtest.Wires(rp.Events))
	}
	if hubtest.DataOf(rp.Events[0]) != "3" || rp.Events[0].ID.String() != ids[2] {
		t.Fatalf("first event %q, want data 3 with id %s", rp.Events[0].Wire, ids[2])
	}
	publishData(t, a, "7", news)
	if live := hubtest.TakeN(t, sub, 1); hubtest.DataOf(live[0]) != "7" {
		t.Fatalf("live after the initial state: %s", hubtest.Wires(live))
	}

	// Resuming: exactly what was missed.
	_, rp, err = b.Subscribe([]hub.TopicRef{news, misc}, ids[0], 100)
	if err != nil || rp.Reset != nil || rp.Later != nil {
		t.Fatalf("resume: %v, reset %+v", err, rp.Reset)
	}
	awaitCond(t, "B's reader to deliver 7", func() bool { return b.local.Position().Seq == 7 })
	if got := seqs(rp.Events); len(got) < 5 || !slices.Equal(got[:5], []uint64{2, 3, 4, 5, 6}) {
		t.Fatalf("resume from 1 replayed %v, want 2..6 (and 7 if delivered)", got)
	}

	// More asked than retained, and a topic nothing was published to.
	few := redisTopic("few", 100)
	few.Ring.OnConnect = 50
	empty := redisTopic("empty", 100)
	empty.Ring.OnConnect = 5
	publishData(t, a, "f1", few)
	publishData(t, a, "f2", few)
	awaitCond(t, "B's reader to deliver 9", func() bool { return b.local.Position().Seq == 9 })
	_, rp, err = b.Subscribe([]hub.TopicRef{few, empty}, "", 100)
	if err != nil || len(rp.Events) != 2 || hubtest.DataOf(rp.Events[0]) != "f1" || hubtest.DataOf(rp.Events[1]) != "f2" {
		t.Fatalf("replay_on_connect 50 of 2 retained: %v, %s", err, hubtest.Wires(rp.Events))
	}
}

// TestRedisReplayOnConnectWaitsForRedis: with Redis down, a subscriber
// without a resume point waits for its initial state (Replay.Later), and
// gets it when Redis returns.
func TestRedisReplayOnConnectWaitsForRedis(t *testing.T) {
	srv := redistest.Start(t, true)
	a := newRedisHub(t, srv, "p10:")
	news := redisTopic("news", 100)
	news.Ring.OnConnect = 2
	for i := 1; i <= 3; i++ {
		publishData(t, a, strconv.Itoa(i), news)
	}
	awaitCond(t, "the reader to deliver 3", func() bool { return a.local.Position().Seq == 3 })
	srv.Kill()
	awaitConnected(t, a, false)
	_, rp, err := a.Subscribe([]hub.TopicRef{news}, "", 100)
	if err != nil || rp.Later == nil {
		t.Fatalf("subscribe with Redis down: %v, later %v; want a replay that comes later", err, rp.Later != nil)
	}
	srv.Start()
	select {
	case got := <-rp.Later:
		if len(got.Events) != 2 || hubtest.DataOf(got.Events[0]) != "2" || hubtest.DataOf(got.Events[1]) != "3" {
			t.Fatalf("initial state after Redis returned: %s", hubtest.Wires(got.Events))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no initial state 15 s after Redis returned")
	}
}
