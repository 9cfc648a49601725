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
	p.window, p.maxUsers = window, maxUsers
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
	if f.clock.pending() > 1 {
		t.Fatalf("%d timers pending after the flood, want at most 1 (the cleanup)", f.clock.pending())
	}
}

func TestPresenceForgetsIdleTopics(t *testing.T) {
	f := newPresenceFixture(t, time.Second, 100)
	f.p.change([]string{"chat/x"}, "alice", 1)
	f.clock.advance(0)
	f.p.change([]string{"chat/x"}, "alice", -1)
	f.clock.advance(time.Second)
	f.expect("join and leave", `join chat/x 1 "alice"`, `leave chat/x 0 "alice"`)
	// The topic is kept one more window (its next change must still wait
	// for the window since the last flush), then forgotten.
	f.clock.advance(time.Second)
	f.p.mu.Lock()
	n := len(f.p.topics)
	f.p.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d topics tracked after every subscriber left, want 0", n)
	}
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
