package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// presenceSite: /events needs a login (basic_auth gives Caddy a user id)
// and reports joins and leaves of chat to the topic online; /anon reports
// those of flood, for anonymous subscribers, and /events-flood for logged-in
// ones; /watch serves online. Routes reporting to one presence topic share
// its counts and window.
const presenceSite = `
http://127.0.0.1:{PORT} {
	basic_auth /events* {
		alice {ALICE_HASH}
		bob {BOB_HASH}
	}
	sse /events {
		topic chat
		presence online {
			window 250ms
		}
	}
	sse /events-flood {
		topic flood
		presence online {
			window 250ms
		}
	}
	sse /anon {
		topic flood
		presence online {
			window 250ms
		}
	}
	sse /watch {
		topic online {
			replay 0
		}
	}
	sse_publish /_sse/publish
}
`

// hashPassword hashes with Caddy's own command, as a user would, at the
// lowest bcrypt cost: the race detector makes the default cost take seconds.
func hashPassword(t *testing.T, pw string) string {
	t.Helper()
	out, err := exec.Command(caddyBin, "hash-password", "--algorithm", "bcrypt", "--bcrypt-cost", "4", "--plaintext", pw).Output()
	if err != nil {
		t.Fatalf("caddy hash-password: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func presenceCaddyfile(t *testing.T) string {
	t.Helper()
	return strings.NewReplacer("{ALICE_HASH}", hashPassword(t, "alice-pw"), "{BOB_HASH}", hashPassword(t, "bob-pw")).Replace(presenceSite)
}

func basicAuth(user, pw string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// presenceSeen is a join or leave as the watcher reads it.
type presenceSeen struct {
	Kind        string
	Topic       string `json:"topic"`
	Subscribers int    `json:"subscribers"`
	User        string `json:"user"`
}

func (p presenceSeen) String() string {
	return fmt.Sprintf("%s %s %d %q", p.Kind, p.Topic, p.Subscribers, p.User)
}

// nextPresence reads the watcher's next event, which must be a join or a
// leave.
func nextPresence(t *testing.T, w *subscriber) presenceSeen {
	t.Helper()
	ev := w.next()
	var p presenceSeen
	if err := json.Unmarshal([]byte(ev.Data), &p); err != nil || (ev.Type != "join" && ev.Type != "leave") {
		t.Fatalf("watcher got event %q data %q (%v), want a join or leave", ev.Type, ev.Data, err)
	}
	p.Kind = ev.Type
	return p
}

func expectPresence(t *testing.T, w *subscriber, want string) {
	t.Helper()
	if got := nextPresence(t, w).String(); got != want {
		t.Fatalf("watcher got %s, want %s", got, want)
	}
}

func TestPresenceJoinAndLeaveWithUser(t *testing.T) {
	c := startCaddy(t, presenceCaddyfile(t))
	w := subscribe(t, client, c.base+"/watch?topic=online").ready()

	alice := subscribe(t, client, c.base+"/events?topic=chat", basicAuth("alice", "alice-pw")).ready()
	expectPresence(t, w, `join chat 1 "alice"`)
	bob := subscribe(t, client, c.base+"/events?topic=chat", basicAuth("bob", "bob-pw")).ready()
	expectPresence(t, w, `join chat 2 "bob"`)
	alice.close()
	expectPresence(t, w, `leave chat 1 "alice"`)
	bob.close()
	expectPresence(t, w, `leave chat 0 "bob"`)

	// A wrong password never reaches the stream: no presence at all. The
	// next event proves it (it would have come first).
	if s := subscribe(t, client, c.base+"/events?topic=chat", basicAuth("bob", "wrong")); s.resp.StatusCode != 401 {
		t.Fatalf("wrong password: status %d, want 401", s.resp.StatusCode)
	}
	publishData(t, c.base+"/_sse/publish", "online", "marker")
	if ev := w.next(); ev.Data != "marker" {
		t.Fatalf("after a refused login the watcher got %q %q, want the marker", ev.Type, ev.Data)
	}
}

// A flood of connects and disconnects produces presence events bounded by
// the window, not by the number of connections.
func TestPresenceFloodIsBounded(t *testing.T) {
	c := startCaddy(t, presenceCaddyfile(t))
	w := subscribe(t, client, c.base+"/watch?topic=online").ready()
	const cycles = 200
	const window = 250 * time.Millisecond
	start := time.Now()
	for range cycles {
		s := subscribe(t, client, c.base+"/anon?topic=flood").ready()
		s.close()
	}
	elapsed := time.Since(start)
	// Then a logged-in subscriber: its join is always reported (no one
	// else is alice), and flushes of a topic are in order, so once it is
	// seen, every event of the flood before it has been seen too.
	subscribe(t, client, c.base+"/events-flood?topic=flood", basicAuth("alice", "alice-pw")).ready()
	var seen []string
	for {
		p := nextPresence(t, w)
		if p.Topic != "flood" {
			t.Fatalf("unexpected presence event %s", p)
		}
		if p.User == "alice" {
			break
		}
		if p.User != "" {
			t.Fatalf("unexpected presence event %s", p)
		}
		seen = append(seen, p.String())
	}
	// Anonymous subscribers are one user: at most one event per flush, at
	// most one flush per window, plus the immediate first one and the last.
	limit := int(elapsed/window) + 3
	t.Logf("%d connect/disconnect cycles in %v: %d presence events (limit %d): %v", cycles, elapsed, len(seen), limit, seen)
	if len(seen) > limit {
		t.Fatalf("%d presence events for %d cycles in %v, want at most %d", len(seen), cycles, elapsed, limit)
	}
}

// With Redis, presence events are published through the engine like any
// other: a watcher on another instance sees them.
func TestPresenceOnRedis(t *testing.T) {
	site := presenceCaddyfile(t)
	_, _, a, b := twoInstancesOf(t, false, site)
	w := subscribe(t, client, b.base+"/watch?topic=online").ready()
	alice := subscribe(t, client, a.base+"/events?topic=chat", basicAuth("alice", "alice-pw")).ready()
	expectPresence(t, w, `join chat 1 "alice"`)
	alice.close()
	expectPresence(t, w, `leave chat 0 "alice"`)
}

// roomsSite reports the joins and leaves of room/* to online. /budget
// allows 10 presence events per hour, so that a test sees what one window
// holds with no clock involved; /rooms allows 10 per 100ms.
const roomsSite = `
http://127.0.0.1:{PORT} {
	sse /budget {
		topic room/*
		presence online {
			window 1h
			max_events 10
		}
	}
	sse /rooms {
		hub quick
		topic room/*
		presence online {
			window 100ms
			max_events 10
		}
	}
	sse /watch {
		topic online {
			replay 0
		}
	}
	sse /watch-quick {
		hub quick
		topic online {
			replay 0
		}
	}
	sse_publish /_sse/publish
	sse_publish /_sse/publish-quick {
		hub quick
	}
}
`

// roomsQuery names n fresh room topics (max_topics_per_subscriber is 64).
func roomsQuery(prefix string, n int) string {
	var q []string
	for i := range n {
		q = append(q, fmt.Sprintf("topic=room/%s%d", prefix, i))
	}
	return strings.Join(q, "&")
}

// The proof line: no request, nor any number of them, makes the hub
// publish more than max_events presence events per window. One anonymous
// connect naming 64 fresh topics used to publish 64 joins at once (and 64
// leaves when it closed), each to every watcher; the window (an hour
// here) holds 10, and whatever follows within it publishes nothing more.
func TestPresenceNoRequestExceedsTheBudgetPerWindow(t *testing.T) {
	c := startCaddy(t, roomsSite)
	w := subscribe(t, client, c.base+"/watch?topic=online").ready()
	subscribe(t, client, c.base+"/budget?"+roomsQuery("a", 64)).ready()
	seen := map[string]bool{}
	for range 10 {
		p := nextPresence(t, w)
		if p.Kind != "join" || !strings.HasPrefix(p.Topic, "room/a") || p.Subscribers != 1 || p.User != "" || seen[p.Topic] {
			t.Fatalf("presence event %s, want the anonymous join of a room not seen yet", p)
		}
		seen[p.Topic] = true
	}
	// The marker is published after the flush that brought the ten: any
	// further presence event of this window would come before it.
	publishData(t, c.base+"/_sse/publish", "online", "marker")
	if ev := w.next(); ev.Data != "marker" {
		t.Fatalf("after 10 presence events the watcher got %q %s, want the marker: the window's budget is 10", ev.Type, ev.Data)
	}
	// More requests within the window: more topics, a reconnect, a close.
	b := subscribe(t, client, c.base+"/budget?"+roomsQuery("b", 64)).ready()
	subscribe(t, client, c.base+"/budget?"+roomsQuery("a", 64)).ready()
	b.close()
	publishData(t, c.base+"/_sse/publish", "online", "marker 2")
	if ev := w.next(); ev.Data != "marker 2" {
		t.Fatalf("later in the window the watcher got %q %s, want the marker: the window's budget is spent", ev.Type, ev.Data)
	}
}

// The budget delays and coalesces; it loses nothing: every topic's join,
// then every leave, reaches the watcher, each once, with its count.
func TestPresenceBudgetLosesNothing(t *testing.T) {
	c := startCaddy(t, roomsSite)
	w := subscribe(t, client, c.base+"/watch-quick?topic=online").ready()
	s := subscribe(t, client, c.base+"/rooms?"+roomsQuery("r", 64)).ready()
	collect := func(kind string, subscribers int) {
		t.Helper()
		seen := map[string]bool{}
		for len(seen) < 64 {
			p := nextPresence(t, w)
			if p.Kind != kind || !strings.HasPrefix(p.Topic, "room/r") || p.Subscribers != subscribers || p.User != "" || seen[p.Topic] {
				t.Fatalf("presence event %s after %d, want the %s of a room not seen yet with %d subscribers", p, len(seen), kind, subscribers)
			}
			seen[p.Topic] = true
		}
	}
	collect("join", 1)
	s.close()
	collect("leave", 0)
	publishData(t, c.base+"/_sse/publish-quick", "online", "marker")
	if ev := w.next(); ev.Data != "marker" {
		t.Fatalf("after 64 joins and 64 leaves the watcher got %q %s, want the marker", ev.Type, ev.Data)
	}
}
