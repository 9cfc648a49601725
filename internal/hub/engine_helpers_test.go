package hub

import (
	"strings"
	"testing"
	"time"
)

// In-package copies of internal/hubtest's helpers: white-box tests of this
// package cannot import hubtest (it imports this package).

// seamTopic is a topic keeping replay events.
func seamTopic(name string, replay int) TopicRef {
	return TopicRef{Name: name, Ring: RingConfig{Replay: replay, ReplaySize: 1 << 30}}
}

// publishTo publishes without a wait bound or idempotency key.

// pubMsg publishes one message (its Data, Meta, PublicID, HashID) to ref.
func pubMsg(e Engine, ref TopicRef, m Message) (PublishResult, error) {
	m.Topics = []string{ref.Name}
	res, err := publishTo(e, []Publication{{Message: &m, Topics: []TopicRef{ref}}})
	if err != nil {
		return PublishResult{}, err
	}
	return res[0], nil
}

// mustPub is Pub that fails the test on an error.
func mustPub(t *testing.T, e Engine, ref TopicRef, m Message) PublishResult {
	t.Helper()
	res, err := pubMsg(e, ref, m)
	if err != nil {
		t.Fatalf("publish %+v: %v", m, err)
	}
	return res
}

// settled waits for a replay the Redis engine had to defer.
func settled(t *testing.T, rp Replay) Replay {
	t.Helper()
	if rp.Later == nil {
		return rp
	}
	select {
	case r := <-rp.Later:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("the replay never came")
	}
	return rp
}

// subscription when the test ends and returns the settled replay.
func subWith(t *testing.T, e Engine, refs []TopicRef, opts SubscribeOptions) (*Subscription, Replay) {
	t.Helper()
	if opts.QueueLen == 0 {
		opts.QueueLen = 1 << 16
	}
	s, rp, err := e.SubscribeWith(refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, settled(t, rp)
}

// dataOf is an event's first data line.
func dataOf(e *Event) string {
	for _, line := range strings.Split(string(e.Wire), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			return d
		}
	}
	return ""
}

// keepFilter refuses the events whose Meta is "drop".
func keepFilter(ev *Event) bool { return ev.Meta != "drop" }

func takeN(t *testing.T, sub *Subscription, n int) []*Event {
	t.Helper()
	var got []*Event
	timeout := time.After(15 * time.Second)
	for len(got) < n {
		select {
		case <-sub.Ready():
			got = sub.Take(got)
		case <-sub.Done():
			t.Fatalf("subscriber dropped after %d of %d events", len(got), n)
		case <-timeout:
			t.Fatalf("got %d of %d events", len(got), n)
		}
	}
	if len(got) > n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	return got
}

func datas(evs []*Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = dataOf(e)
	}
	return out
}
