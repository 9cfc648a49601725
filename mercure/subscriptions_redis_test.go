package mercure

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/redishub"
	"github.com/ssehub/caddy-sse/internal/redistest"
)

// notified collects the events a registry publishes by itself.
type notified struct {
	mu  sync.Mutex
	ch  chan struct{}
	got []notice
}

// notice is one event a registry published: a subscription and its state.
type notice struct {
	mercureSub
	Active bool
}

func newNotified() *notified { return &notified{ch: make(chan struct{}, 64)} }

func (n *notified) add(subs []mercureSub, active bool) {
	n.mu.Lock()
	for _, s := range subs {
		n.got = append(n.got, notice{s, active})
	}
	n.mu.Unlock()
	n.ch <- struct{}{}
}

func (n *notified) wait(t *testing.T, what string) []notice {
	t.Helper()
	select {
	case <-n.ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.got
	n.got = nil
	return out
}

func listIDs(t *testing.T, r mercureSubsRegistry) map[string]bool {
	t.Helper()
	l, err := r.list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range l {
		ids[s.key()] = true
	}
	return ids
}

// Two instances share the registry; one that stops refreshing (a crash)
// is reaped by the other, with events, and one that comes back after it
// was reaped rewrites its subscriptions from its mirror, with events.
func TestRedisSubsRegistry(t *testing.T) {
	srv := redistest.Start(t, false)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	a := newRedisSubsRegistry(newRedisHub(t, srv, "subs:"), ttl, nil)
	t.Cleanup(func() { _ = a.Destruct() })
	bHub := newRedisHub(t, srv, "subs:")
	b := newRedisSubsRegistry(bHub, ttl, nil)
	aEvents, bEvents := newNotified(), newNotified()
	a.setNotify(aEvents.add)
	b.setNotify(bEvents.add)

	shared := mercureSub{MatchType: "exact", Match: "x", Subscriber: "alice"}
	onlyB := mercureSub{MatchType: "exact", Match: "y", Subscriber: "bob", Payload: json.RawMessage(`{"n":1}`)}
	if got := a.join(ctx, []mercureSub{shared}); len(got) != 1 {
		t.Fatalf("A's join activated %d", len(got))
	}
	if got := b.join(ctx, []mercureSub{shared, onlyB}); len(got) != 1 || got[0].key() != onlyB.key() {
		t.Fatalf("B's join activated %+v, want bob's only", got)
	}
	if ids := listIDs(t, a); len(ids) != 2 || !ids[shared.key()] || !ids[onlyB.key()] {
		t.Fatalf("A lists %v", ids)
	}

	// B stops refreshing, as a crashed instance: A reaps it.
	b.cancel()
	b.done.Wait()
	got := aEvents.wait(t, "reaping of B")
	if len(got) != 1 || got[0].key() != onlyB.key() || got[0].Active || string(got[0].Payload) != `{"n":1}` {
		t.Fatalf("A published %+v, want bob's subscription ended", got)
	}
	if ids := listIDs(t, a); len(ids) != 1 || !ids[shared.key()] {
		t.Fatalf("after the reaping A lists %v, want alice's (still held by A)", ids)
	}
	// B's leave after the reaping counts nothing out twice.
	if got := b.leave(ctx, []mercureSub{shared}); len(got) != 0 {
		t.Fatalf("B's late leave ended %+v", got)
	}
	if ids := listIDs(t, a); !ids[shared.key()] {
		t.Fatalf("alice's subscription ended by B's late leave")
	}

	// B comes back: its mirror still holds bob's subscription.
	b.heartbeat(ctx)
	got = bEvents.wait(t, "B's resync")
	if len(got) != 1 || got[0].key() != onlyB.key() || !got[0].Active {
		t.Fatalf("B's resync published %+v, want bob's subscription active again", got)
	}
	if ids := listIDs(t, a); len(ids) != 2 {
		t.Fatalf("after B's resync A lists %v", ids)
	}
	if got := a.leave(ctx, []mercureSub{shared}); len(got) != 1 {
		t.Fatalf("A's leave of the last holder of alice's subscription ended %+v", got)
	}
	if got := b.leave(ctx, []mercureSub{onlyB}); len(got) != 1 {
		t.Fatalf("B's leave ended %+v", got)
	}
	if ids := listIDs(t, a); len(ids) != 0 {
		t.Fatalf("A lists %v after every leave", ids)
	}
}

// newRedisHub is a Redis engine on srv, connected, closed when the test ends.
func newRedisHub(t *testing.T, srv *redistest.Server, prefix string) *redishub.RedisHub {
	t.Helper()
	rh, err := redishub.NewRedisHub("default", redishub.RedisConfig{URL: srv.URL(), Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rh.Close() })
	deadline := time.Now().Add(15 * time.Second)
	for !rh.Stats().Connected {
		if time.Now().After(deadline) {
			t.Fatal("the Redis engine never connected")
		}
		time.Sleep(5 * time.Millisecond) // polls a state no event announces
	}
	return rh
}
