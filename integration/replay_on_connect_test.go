package integration

// replay_on_connect against a real Caddy, on the memory hub and on Redis
// (published through one instance, subscribed on another): a subscriber
// with no resume point first gets the newest n events of each topic, then
// live ones; a resuming subscriber is unaffected.

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const initialStateSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news {
			replay 50
			replay_on_connect 3
		}
		topic alerts {
			replay_on_connect 2
		}
		topic plain
		topic chat/* {
			replay_on_connect 2
		}
		topic race {
			replay 1000
			replay_on_connect 10
		}
	}
	sse_publish /publish
}
`

// initialStateEngine is where a test publishes and where it subscribes:
// the same Caddy on the memory hub, two Caddies sharing a Redis.
type initialStateEngine struct {
	name     string
	pub, sub *caddyProc
	// caughtUp waits until the subscribing instance has delivered the
	// event with id: what it registers a subscriber at.
	caughtUp func(t *testing.T, id string)
}

func initialStateEngines(t *testing.T) []initialStateEngine {
	mem := startCaddy(t, initialStateSite)
	_, _, a, b := twoInstancesOf(t, false, initialStateSite)
	return []initialStateEngine{
		{"memory", mem, mem, func(*testing.T, string) {}},
		{"redis", a, b, func(t *testing.T, id string) {
			t.Helper()
			_, want := splitID(t, id)
			deadline := time.Now().Add(eventWait)
			for {
				if _, got := splitID(t, b.stats(t, "default").LastID); got >= want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("instance B did not deliver %s within %v", id, eventWait)
				}
				time.Sleep(10 * time.Millisecond) // polling the admin API; B's reader is not observable otherwise
			}
		}},
	}
}

// expectEvents reads len(want) events and checks their data, then checks
// that the next event is a live one published now (nothing else came
// first).
func expectEvents(t *testing.T, s *subscriber, pubURL, topic string, want ...string) []string {
	t.Helper()
	var ids []string
	for i, w := range want {
		ev := s.next()
		if ev.Data != w {
			t.Fatalf("event %d: %q (id %s), want %q", i, ev.Data, ev.LastEventID, w)
		}
		ids = append(ids, ev.LastEventID)
	}
	marker := fmt.Sprintf("live-%d", time.Now().UnixNano())
	publishData(t, pubURL, topic, marker)
	if ev := s.next(); ev.Data != marker {
		t.Fatalf("after %d events, got %q (id %s) where the live %q was due", len(want), ev.Data, ev.LastEventID, marker)
	}
	return ids
}

func TestReplayOnConnect(t *testing.T) {
	t.Parallel()
	for _, e := range initialStateEngines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			pub := e.pub.base + "/publish"
			events := e.sub.base + "/events"
			var last string
			for i, topics := range [][]string{{"news"}, {"alerts"}, {"news", "alerts"}, {"plain"}, {"news"}, {"alerts"}, {"news"}, {"plain"}} {
				last = publishJSON(t, pub, map[string]any{"topics": topics, "data": fmt.Sprintf("e%d", i+1)}).ID
			}
			e.caughtUp(t, last)

			t.Run("no resume point gets the newest n of each topic", func(t *testing.T) {
				// news' newest 3: e3 e5 e7; alerts' newest 2: e3 e6 (e3 once);
				// plain has no replay_on_connect.
				s := subscribe(t, client, events+"?topic=news&topic=alerts&topic=plain").ready()
				expectEvents(t, s, pub, "plain", "e3", "e5", "e6", "e7")
			})
			t.Run("a topic without replay_on_connect gets nothing first", func(t *testing.T) {
				s := subscribe(t, client, events+"?topic=plain").ready()
				expectEvents(t, s, pub, "plain")
			})
			t.Run("a resume point gets exactly what it missed", func(t *testing.T) {
				s := subscribe(t, client, events+"?topic=news&topic=alerts").ready()
				ids := expectEvents(t, s, pub, "alerts", "e3", "e5", "e6", "e7")
				s.close()
				// From e3: e5 e6 e7 and the live marker, all of them.
				r := subscribe(t, client, events+"?topic=news&topic=alerts", "Last-Event-ID: "+ids[0]).ready()
				for _, w := range []string{"e5", "e6", "e7", "live-"} {
					if ev := r.next(); !strings.HasPrefix(ev.Data, w) {
						t.Fatalf("resume from e3: %q, want %q", ev.Data, w)
					}
				}
				// ?last_event_id= on a first connect is a resume point too.
				q := subscribe(t, client, events+"?topic=news&last_event_id="+url.QueryEscape(ids[2])).ready()
				expectEvents(t, q, pub, "news", "e7")
			})
			t.Run("more than retained gets what is retained", func(t *testing.T) {
				id := publishData(t, pub, "chat/room1", "c1").ID
				e.caughtUp(t, id)
				s := subscribe(t, client, events+"?topic=chat/room1&topic=chat/room2").ready()
				expectEvents(t, s, pub, "chat/room2", "c1")
			})
		})
	}
}

// TestReplayOnConnectRace: subscribers without a resume point connect while
// a publisher publishes. Each gets one unbroken run of the topic's events,
// none twice, starting no later than n events before what was published
// by the time it was registered.
func TestReplayOnConnectRace(t *testing.T) {
	t.Parallel()
	const total, n, subscribers = 300, 10, 8
	for _, e := range initialStateEngines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			pub := e.pub.base + "/publish"
			// Publishes begun: an event may be in the hub before its POST
			// is answered, so this, not the answered count, bounds what a
			// subscriber registered before reading it can have missed.
			var begun atomic.Int64
			// joinAt[k] closes once k*total/subscribers events are
			// published: subscriber k joins then, at its depth of the
			// publishing.
			joinAt := make([]chan struct{}, subscribers)
			for k := range joinAt {
				joinAt[k] = make(chan struct{})
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := 0
				for i := 0; i <= total; i++ {
					for next < subscribers && i >= next*total/subscribers {
						close(joinAt[next])
						next++
					}
					if i == total {
						break
					}
					begun.Add(1)
					publishData(t, pub, "race", seqData(i))
				}
			}()
			type run struct {
				first int   // index of the first event received
				bound int64 // publishes begun once the subscriber was registered
				got   []string
			}
			runs := make([]run, subscribers)
			for k := range subscribers {
				<-joinAt[k]
				s := subscribe(t, client, e.sub.base+"/events?topic=race").ready()
				runs[k].bound = begun.Load()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						ev := s.next()
						runs[k].got = append(runs[k].got, ev.Data)
						if ev.Data == seqData(total-1) {
							return
						}
					}
				}()
			}
			wg.Wait()
			for k, r := range runs {
				var first int
				if _, err := fmt.Sscanf(r.got[0], "event-%d", &first); err != nil {
					t.Fatalf("subscriber %d: first event %q", k, r.got[0])
				}
				for i, d := range r.got {
					if d != seqData(first+i) {
						t.Fatalf("subscriber %d: event %d is %q, want %q (gap, duplicate or reorder)", k, i, d, seqData(first+i))
					}
				}
				if limit := max(int(r.bound)-n, 0); first > limit {
					t.Fatalf("subscriber %d started at event %d; at most %d were published when it was registered, so the newest %d start at or before %d",
						k, first, r.bound, n, limit)
				}
			}
		})
	}
}
