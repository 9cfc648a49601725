package caddysse

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"

	"github.com/caddyserver/caddy/v2"
)

// fakeClock drives a presence tracker's windows: timers fire when the test
// advances it, on the test's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) after(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, fakeTimer{c.t.Add(d), f})
}

// advance moves the clock by d and fires every timer due by then, in order.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		due := -1
		for i, tm := range c.timers {
			if !tm.at.After(c.t) && (due < 0 || tm.at.Before(c.timers[due].at)) {
				due = i
			}
		}
		if due < 0 {
			c.mu.Unlock()
			return
		}
		f := c.timers[due].f
		c.timers = append(c.timers[:due], c.timers[due+1:]...)
		c.mu.Unlock()
		f()
	}
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// presenceEvent is a join or leave as a watcher reads it.
type presenceEvent struct {
	Kind string
	presenceData
}

func (e presenceEvent) String() string {
	return fmt.Sprintf("%s %s %d %q", e.Kind, e.Topic, e.Subscribers, e.User)
}

// presenceFixture is a tracker on a real memory hub, with a watcher
// subscribed to its presence topic.
type presenceFixture struct {
	t       *testing.T
	clock   *fakeClock
	p       *presenceTracker
	watcher *hub.Subscription
}

func newPresenceFixture(t *testing.T, window time.Duration, maxUsers int) *presenceFixture {
	t.Helper()
	engine := hub.NewHub()
	t.Cleanup(func() { _ = engine.Close() })
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newPresenceTracker(engine, "online")
	p.now, p.after = clock.now, clock.after
	p.window, p.maxUsers, p.maxEvents = window, maxUsers, DefaultPresenceMaxEvents
	p.ref, p.resolved = hub.TopicRef{Name: "online", Ring: hubtest.Ring}, true
	watcher, _ := hubtest.Subscribe(t, engine, hubtest.Refs("online"), "", 1<<16)
	return &presenceFixture{t: t, clock: clock, p: p, watcher: watcher}
}

// events returns what the watcher received so far (publishes on the
// memory hub are queued when Publish returns).
func (f *presenceFixture) events() []string {
	f.t.Helper()
	var out []string
	for _, ev := range hubtest.Drain(f.watcher) {
		var e presenceEvent
		for line := range strings.SplitSeq(string(ev.Wire), "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				e.Kind = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				if err := json.Unmarshal([]byte(v), &e.presenceData); err != nil {
					f.t.Fatalf("presence data %q: %v", v, err)
				}
			}
		}
		out = append(out, e.String())
	}
	return out
}

func (f *presenceFixture) expect(what string, want ...string) {
	f.t.Helper()
	got := f.events()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		f.t.Fatalf("%s: watcher got\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestPresenceFirstChangeIsImmediateLaterOnesWaitForTheWindow(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.change([]string{"chat"}, "alice", 1)
	f.clock.advance(0)
	f.expect("first join", `join chat 1 "alice"`)

	f.p.change([]string{"chat"}, "bob", 1)
	f.clock.advance(999 * time.Millisecond)
	f.expect("a join within the window waits")
	f.clock.advance(time.Millisecond)
	f.expect("at the window's end", `join chat 2 "bob"`)

	f.p.change([]string{"chat"}, "alice", -1)
	f.clock.advance(time.Second)
	f.expect("leave", `leave chat 1 "alice"`)
}

func TestPresenceCoalescesPerUserWithinOneWindow(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.change([]string{"chat"}, "alice", 1)
	f.clock.advance(0)
	f.expect("first join", `join chat 1 "alice"`)

	// Within one window: bob joins; carol joins and leaves (net zero: not
	// reported); alice leaves; an anonymous subscriber joins twice; dave
	// opens two streams (one join).
	f.p.change([]string{"chat"}, "bob", 1)
	f.p.change([]string{"chat"}, "carol", 1)
	f.p.change([]string{"chat"}, "", 1)
	f.p.change([]string{"chat"}, "carol", -1)
	f.p.change([]string{"chat"}, "alice", -1)
	f.p.change([]string{"chat"}, "", 1)
	f.p.change([]string{"chat"}, "dave", 1)
	f.p.change([]string{"chat"}, "dave", 1)
	f.clock.advance(time.Second)
	// Every event carries the count at the flush: 1 bob + 2 anonymous + 2 dave.
	f.expect("one flush, one event per user whose streams changed, in first-change order",
		`join chat 5 "bob"`, `join chat 5 ""`, `leave chat 5 "alice"`, `join chat 5 "dave"`)
}

func TestPresenceCountsPerTopic(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.change([]string{"chat/a", "chat/b"}, "alice", 1)
	f.p.change([]string{"chat/b"}, "bob", 1)
	f.clock.advance(0)
	f.expect("each topic flushes on its own",
		`join chat/a 1 "alice"`, `join chat/b 2 "alice"`, `join chat/b 2 "bob"`)
}

func TestPresenceUsersBeyondMaxUsersAreAnonymous(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 2)
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		f.p.change([]string{"chat"}, u, 1)
	}
	f.clock.advance(0)
	f.expect("two users named, the rest one anonymous join",
		`join chat 4 "u1"`, `join chat 4 "u2"`, `join chat 4 ""`)
}

// A flood of connects and disconnects costs at most one flush per window
// per topic, whatever the number of cycles.
func TestPresenceFloodIsBoundedByTheWindow(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	total := 0
	for round := range 5 {
		for i := range 200 {
			user := fmt.Sprintf("u%d", i%3)
			f.p.change([]string{"chat"}, user, 1)
			f.p.change([]string{"chat"}, user, -1)
		}
		f.clock.advance(time.Second)
		got := f.events()
		total += len(got)
		if len(got) > 1 {
			t.Fatalf("round %d: %d presence events for 200 connect/disconnect cycles within a window, want at most 1: %v", round, len(got), got)
		}
	}
	if total > 2 { // the first join (immediate) and its leave
		t.Fatalf("%d presence events for 1000 cycles over 5 windows, want at most 2", total)
	}
	if f.clock.pending() != 0 {
		t.Fatalf("%d timers pending after the flood, want none", f.clock.pending())
	}
}

// One connect naming many topics costs at most max_events presence events
// per window, all topics together; the rest come in later windows, each
// topic once, in the order the topics changed, with nothing lost.
func TestPresenceBudgetsEventsPerWindowAcrossTopics(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.maxEvents = 10
	var rooms []string
	for i := range 64 {
		rooms = append(rooms, fmt.Sprintf("room/%02d", i))
	}
	expectRooms := func(what, kind string, count, from, to int) {
		t.Helper()
		var want []string
		for _, r := range rooms[from:to] {
			want = append(want, fmt.Sprintf(`%s %s %d ""`, kind, r, count))
		}
		f.expect(what, want...)
	}
	f.p.change(rooms, "", 1)
	f.clock.advance(0)
	expectRooms("the first window", "join", 1, 0, 10)
	f.clock.advance(999 * time.Millisecond)
	f.expect("nothing more within the window")
	for from := 10; from < 64; from += 10 {
		f.clock.advance(time.Millisecond)
		expectRooms(fmt.Sprintf("window from room %d", from), "join", 1, from, min(from+10, 64))
		f.clock.advance(999 * time.Millisecond)
	}
	f.clock.advance(time.Second)
	f.expect("everything was reported")

	f.p.change(rooms, "", -1)
	for from := 0; from < 64; from += 10 {
		f.clock.advance(time.Second)
		expectRooms(fmt.Sprintf("leaves from room %d", from), "leave", 0, from, min(from+10, 64))
	}
	f.p.mu.Lock()
	n := len(f.p.topics)
	f.p.mu.Unlock()
	if n != 0 || f.clock.pending() != 0 {
		t.Fatalf("after every leave was reported: %d topics tracked and %d timers pending, want none", n, f.clock.pending())
	}
}

// Changes waiting for the budget keep coalescing and carry the count of the
// flush that reports them; a topic cut short keeps its place.
func TestPresenceWaitingChangesCoalesce(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.maxEvents = 2
	f.p.change([]string{"a"}, "u1", 1)
	f.p.change([]string{"a"}, "u2", 1)
	f.p.change([]string{"a"}, "u3", 1)
	f.p.change([]string{"b"}, "u1", 1)
	f.p.change([]string{"c"}, "u1", 1)
	f.clock.advance(0)
	f.expect("the first two", `join a 3 "u1"`, `join a 3 "u2"`)
	// Within the window: u4 joins a (after u3, which still waits), c's
	// only change nets out (c leaves the queue), b's user opens a second
	// stream (still one join).
	f.p.change([]string{"a"}, "u4", 1)
	f.p.change([]string{"c"}, "u1", -1)
	f.p.change([]string{"b"}, "u1", 1)
	f.clock.advance(time.Second)
	f.expect("a first, cut where it was", `join a 4 "u3"`, `join a 4 "u4"`)
	f.clock.advance(time.Second)
	f.expect("then b, with the count of now", `join b 2 "u1"`)
	f.clock.advance(time.Second)
	f.expect("c netted out: nothing")
	f.p.mu.Lock()
	_, tracked := f.p.topics["c"]
	f.p.mu.Unlock()
	if tracked {
		t.Fatal("topic c is still tracked after its changes netted out and it has no subscriber")
	}
}

// A flush that spends the budget on a topic's last owed event leaves the
// topic, netted-out changes and all: no further flush is due.
func TestPresenceBudgetSpentOnTheLastOwedEvent(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.maxEvents = 1
	f.p.change([]string{"a"}, "u1", 1)
	f.p.change([]string{"a"}, "u2", 1)
	f.p.change([]string{"a"}, "u2", -1)
	f.clock.advance(0)
	f.expect("u1's join; u2 netted out", `join a 1 "u1"`)
	f.p.mu.Lock()
	queued := f.p.queue.head != nil
	f.p.mu.Unlock()
	if queued || f.clock.pending() != 0 {
		t.Fatalf("after the last owed event: queue empty %v, %d timers pending; want an empty queue and none", !queued, f.clock.pending())
	}
}

// A flood of connects and disconnects on fresh names leaves nothing behind
// for a flush to walk: topics that net out leave the queue and the map at
// once.
func TestPresenceFreshNamesThatNetOutAreForgotten(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	for i := range 1000 {
		name := []string{fmt.Sprintf("room/%d", i)}
		f.p.change(name, "", 1)
		f.p.change(name, "", -1)
	}
	f.p.mu.Lock()
	n, queued := len(f.p.topics), f.p.queue.head != nil
	f.p.mu.Unlock()
	if n != 0 || queued {
		t.Fatalf("after 1000 connect/disconnect cycles on fresh names: %d topics tracked, queue empty %v; want none", n, !queued)
	}
	f.clock.advance(time.Second)
	f.expect("nothing to report")
}

func TestPresenceForgetsIdleTopics(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.change([]string{"chat/x"}, "alice", 1)
	f.clock.advance(0)
	f.p.change([]string{"chat/x"}, "alice", -1)
	f.clock.advance(time.Second)
	f.expect("join and leave", `join chat/x 1 "alice"`, `leave chat/x 0 "alice"`)
	// Forgotten once its leave is out: the window is the tracker's, so a
	// next change still waits for the window since this flush.
	f.p.mu.Lock()
	n := len(f.p.topics)
	f.p.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d topics tracked after every subscriber left, want 0", n)
	}
	f.clock.advance(time.Second)
	f.p.change([]string{"chat/x"}, "bob", 1)
	f.clock.advance(0)
	f.expect("a new join after the topic was forgotten", `join chat/x 1 "bob"`)
}

func TestPresenceClosedTrackerPublishesNothing(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.change([]string{"chat"}, "alice", 1)
	_ = f.p.Destruct()
	f.clock.advance(time.Second)
	f.expect("nothing after Destruct")
}

// The presence topic must be declared in the hub; it may be declared by a
// later handler than the one that names it, so the check runs when the
// configuration starts.
func TestPresenceTopicMustBeDeclared(t *testing.T) {
	load := func(routes ...string) error {
		cfg := `{"admin": {"disabled": true}, "apps": {"http": {"servers": {"srv0": {
			"listen": ["127.0.0.1:0"], "routes": [` + strings.Join(routes, ",") + `]}}}}}`
		err := caddy.Load([]byte(cfg), true)
		if err == nil {
			t.Cleanup(func() { _ = caddy.Stop() })
		}
		return err
	}
	err := load(`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse", "topics": [{"names": ["chat"]}], "presence": {"topic": "online"}}]}`)
	if err == nil || !strings.Contains(err.Error(), `presence topic "online" is not declared`) || !strings.Contains(err.Error(), `hub "default"`) {
		t.Fatalf("undeclared presence topic: got %v, want an error naming it and its hub", err)
	}
	// Declared by a later handler of the same hub: fine.
	err = load(
		`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse", "topics": [{"names": ["chat"]}], "presence": {"topic": "online"}}]}`,
		`{"match": [{"path": ["/b"]}], "handle": [{"handler": "sse", "topics": [{"names": ["online"], "replay": 0}]}]}`,
	)
	if err != nil {
		t.Fatalf("presence topic declared by another handler of the hub: %v", err)
	}
	// Declared only in another hub: refused.
	err = load(
		`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse", "topics": [{"names": ["chat"]}], "presence": {"topic": "online"}}]}`,
		`{"match": [{"path": ["/b"]}], "handle": [{"handler": "sse", "hub": "other", "topics": [{"names": ["online"]}]}]}`,
	)
	if err == nil || !strings.Contains(err.Error(), `"online"`) {
		t.Fatalf("presence topic declared only in another hub: got %v, want an error", err)
	}
}

// Routes reporting to one presence topic share its budget, so they must
// agree on it; a negative setting is refused, naming the options.
func TestPresenceSettingsAreCheckedAtLoad(t *testing.T) {
	load := func(routes ...string) error {
		cfg := `{"admin": {"disabled": true}, "apps": {"http": {"servers": {"srv0": {
			"listen": ["127.0.0.1:0"], "routes": [` + strings.Join(routes, ",") + `]}}}}}`
		err := caddy.Load([]byte(cfg), true)
		if err == nil {
			t.Cleanup(func() { _ = caddy.Stop() })
		}
		return err
	}
	err := load(`{"handle": [{"handler": "sse", "topics": [{"names": ["chat", "online"]}], "presence": {"topic": "online", "max_events": -1}}]}`)
	if err == nil || !strings.Contains(err.Error(), "max_events must not be negative") {
		t.Fatalf("negative max_events: got %v, want an error naming it", err)
	}
	err = load(
		`{"match": [{"path": ["/a"]}], "handle": [{"handler": "sse", "topics": [{"names": ["chat", "online"]}], "presence": {"topic": "online", "max_events": 10}}]}`,
		`{"match": [{"path": ["/b"]}], "handle": [{"handler": "sse", "topics": [{"names": ["room"]}], "presence": {"topic": "online"}}]}`,
	)
	if err == nil || !strings.Contains(err.Error(), "different window, max_users or max_events") || !strings.Contains(err.Error(), "1s/100/10 and 1s/100/100") {
		t.Fatalf("two routes sharing a presence topic with different max_events: got %v, want an error naming both", err)
	}
}
