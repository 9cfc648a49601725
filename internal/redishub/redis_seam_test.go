package redishub

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"

	"github.com/ssehub/caddy-sse/internal/redistest"
)

// TestRedisPublicIDOverMaxmemory: over maxmemory with noeviction, a
// publish with a PublicID, fresh or reused, is refused whole: nothing is
// written. An id in the hub's id space is refused before any write, as a
// reserved id.
func TestRedisPublicIDOverMaxmemory(t *testing.T) {
	srv := startRedisWith(t, "--maxmemory-policy", "noeviction")
	rh := newRedisHub(t, srv, "oomid:")
	ref := redisTopic("m", 100)
	// An id held, so a reuse has an earlier event to follow.
	if _, err := hubtest.Pub(rh, ref, hub.Message{Data: "warm", PublicID: "held"}); err != nil {
		t.Fatal(err)
	}
	srv.PushPastMaxmemory(t)
	dbsize := srv.MustDo(t, "DBSIZE")
	seq := srv.Get(t, "oomid:default#seq")
	card := srv.MustDo(t, "ZCARD", "oomid:default#pids:m")
	for _, c := range []struct{ topic, id string }{{"m", "new-m"}, {"fresh", "new-fresh"}, {"m", "held"}} {
		_, err := hubtest.Pub(rh, redisTopic(c.topic, 100), hub.Message{Data: strings.Repeat("y", 1000), PublicID: c.id, Meta: "meta"})
		if !errors.Is(err, hub.ErrEngineUnavailable) || !strings.Contains(err.Error(), "out of memory") {
			t.Fatalf("publish with id %s to %s over maxmemory: %v", c.id, c.topic, err)
		}
	}
	epoch := rh.local.Position().Epoch
	if _, err := hubtest.Pub(rh, ref, hub.Message{Data: "d", PublicID: epoch + "-7"}); !errors.Is(err, hub.ErrReservedID) {
		t.Fatalf("an id in the hub's id space over maxmemory: %v", err)
	}
	if got := srv.MustDo(t, "DBSIZE"); got != dbsize {
		t.Fatalf("DBSIZE went from %v to %v", dbsize, got)
	}
	if got := srv.Get(t, "oomid:default#seq"); got != seq {
		t.Fatalf("the counter moved from %s to %s", seq, got)
	}
	if got := srv.MustDo(t, "ZCARD", "oomid:default#pids:m"); got != card {
		t.Fatalf("the id set went from %v to %v entries", card, got)
	}
	if n := srv.MustDo(t, "XLEN", "oomid:default:m"); n != int64(1) {
		t.Fatalf("the stream holds %v entries, want 1", n)
	}
	srv.MustDo(t, "CONFIG", "SET", "maxmemory", "0")
	if _, err := hubtest.Pub(rh, ref, hub.Message{Data: "back", PublicID: "held"}); err != nil {
		t.Fatalf("after room was made: %v", err)
	}
	if n := srv.MustDo(t, "ZCARD", "oomid:default#pids:m"); n != int64(2) {
		t.Fatalf("the id set holds %v entries, want 2 (held, twice)", n)
	}
}

// TestRedisPublicIDIndexFollowsTheStream: the topic's id set loses an
// event's entry when the stream trims it, expires with the stream, and is
// reset with it.
func TestRedisPublicIDIndexFollowsTheStream(t *testing.T) {
	srv := redistest.Start(t, false)
	rh := newRedisHub(t, srv, "ix:")
	small := redisTopic("small", 2)
	for _, id := range []string{"a", "b", "a", "c"} {
		if _, err := hubtest.Pub(rh, small, hub.Message{Data: id, PublicID: id}); err != nil {
			t.Fatal(err)
		}
	}
	members, _ := srv.MustDo(t, "ZRANGE", "ix:default#pids:small", "0", "-1").([]any)
	var ids []string
	for _, m := range members {
		s, _ := m.(string)
		id, seq, _ := strings.Cut(s, "\x00")
		ids = append(ids, id+"@"+strings.TrimLeft(seq, "0"))
	}
	if strings.Join(ids, " ") != "a@3 c@4" {
		t.Fatalf("id set %q, want the entries of the two retained events", ids)
	}

	aged := hub.TopicRef{Name: "aged", Ring: hub.RingConfig{Replay: 100, ReplaySize: 1 << 20, ReplayAge: 50 * time.Millisecond}}
	if _, err := hubtest.Pub(rh, aged, hub.Message{Data: "a", PublicID: "gone"}); err != nil {
		t.Fatal(err)
	}
	if ttl := srv.MustDo(t, "PTTL", "ix:default#pids:aged"); ttl.(int64) <= 0 {
		t.Fatalf("the id set of an aged topic has PTTL %v", ttl)
	}
	awaitCond(t, "the aged stream to expire", func() bool { return srv.MustDo(t, "EXISTS", "ix:default:aged") == int64(0) })
	if n := srv.MustDo(t, "EXISTS", "ix:default#pids:aged"); n != int64(0) {
		t.Fatal("the id set outlived its stream")
	}
}
