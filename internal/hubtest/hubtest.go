// Package hubtest holds the test helpers that the engines' tests share
// (internal/hub's external tests, internal/redishub's and the routes'): publish
// and subscribe through the Engine interface, and read what came back. It
// uses only the hub's exported API and is imported only by tests.
package hubtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// Ring keeps everything: tests that are not about eviction use it.
var Ring = hub.RingConfig{Replay: 1 << 20, ReplaySize: 1 << 40}

// Topic is a topic keeping replay events.
func Topic(name string, replay int) hub.TopicRef {
	return hub.TopicRef{Name: name, Ring: hub.RingConfig{Replay: replay, ReplaySize: 1 << 30}}
}

// Publish publishes without a wait bound or idempotency key.
func Publish(e hub.Engine, pubs []hub.Publication) ([]hub.PublishResult, error) {
	out, err := e.Publish(context.Background(), pubs, hub.PublishOptions{})
	return out.Results, err
}

// Pub publishes one message (its Data, Meta, PublicID, HashID) to ref.
func Pub(e hub.Engine, ref hub.TopicRef, m hub.Message) (hub.PublishResult, error) {
	m.Topics = []string{ref.Name}
	res, err := Publish(e, []hub.Publication{{Message: &m, Topics: []hub.TopicRef{ref}}})
	if err != nil {
		return hub.PublishResult{}, err
	}
	return res[0], nil
}

// MustPub is Pub that fails the test on an error.
func MustPub(t *testing.T, e hub.Engine, ref hub.TopicRef, m hub.Message) hub.PublishResult {
	t.Helper()
	res, err := Pub(e, ref, m)
	if err != nil {
		t.Fatalf("publish %+v: %v", m, err)
	}
	return res
}

// Settled waits for a replay the Redis engine had to defer.
func Settled(t *testing.T, rp hub.Replay) hub.Replay {
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

// SubWith subscribes (a deep queue unless opts says), closes the
// subscription when the test ends and returns the settled replay.
func SubWith(t *testing.T, e hub.Engine, refs []hub.TopicRef, opts hub.SubscribeOptions) (*hub.Subscription, hub.Replay) {
	t.Helper()
	if opts.QueueLen == 0 {
		opts.QueueLen = 1 << 16
	}
	s, rp, err := e.SubscribeWith(refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, Settled(t, rp)
}

// IDLine is the first line of an event on the wire.
func IDLine(e *hub.Event) string {
	line, _, _ := strings.Cut(string(e.Wire), "\n")
	return line
}

// DataOf is an event's first data line.
func DataOf(e *hub.Event) string {
	for _, line := range strings.Split(string(e.Wire), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			return d
		}
	}
	return ""
}

// Datas is each event's DataOf.
func Datas(evs []*hub.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = DataOf(e)
	}
	return out
}

// KeepFilter refuses the events whose Meta is "drop".
func KeepFilter(ev *hub.Event) bool { return ev.Meta != "drop" }

// IsClosed reports whether ch is closed, without waiting.
func IsClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Refs are topics keeping everything (Ring).
func Refs(names ...string) []hub.TopicRef {
	refs := make([]hub.TopicRef, len(names))
	for i, n := range names {
		refs[i] = hub.TopicRef{Name: n, Ring: Ring}
	}
	return refs
}

// GroupRef is a concrete topic of a pattern declaration.
func GroupRef(name, group string, groupMax int) hub.TopicRef {
	return hub.TopicRef{Name: name, Ring: Ring, Group: group, GroupMax: groupMax}
}

// PublishData publishes one event with data to refs.
func PublishData(t *testing.T, e hub.Engine, data string, refs ...hub.TopicRef) hub.PublishResult {
	t.Helper()
	res, err := Publish(e, []hub.Publication{{Message: &hub.Message{Data: data}, Topics: refs}})
	if err != nil {
		t.Fatalf("Publish(%q) = %v", data, err)
	}
	if len(res) != 1 {
		t.Fatalf("Publish returned %d results for one publication", len(res))
	}
	return res[0]
}

// Subscribe subscribes and closes the subscription when the test ends.
func Subscribe(t *testing.T, e hub.Engine, refs []hub.TopicRef, resume string, queue int) (*hub.Subscription, hub.Replay) {
	t.Helper()
	s, rp, err := e.SubscribeWith(refs, hub.SubscribeOptions{Resume: resume, QueueLen: queue})
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v", resume, err)
	}
	t.Cleanup(s.Close)
	return s, rp
}

// Drain takes what is queued for s without waiting: everything a
// returned Publish of the memory hub queued is already there.
func Drain(s *hub.Subscription) []*hub.Event {
	select {
	case <-s.Ready():
	default:
	}
	return s.Take(nil)
}

// TakeN waits for n live events on sub, failing the test on fewer, more, or
// a dropped subscriber.
func TakeN(t *testing.T, sub *hub.Subscription, n int) []*hub.Event {
	t.Helper()
	var got []*hub.Event
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
		t.Fatalf("got %d events, want %d: %s", len(got), n, Wires(got))
	}
	return got
}

// Wires is the events' bytes on the wire, for failure messages.
func Wires(evs []*hub.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.Write(e.Wire)
	}
	return b.String()
}
