package caddysse

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/redistest"
)

// TestRedisPublicIDOverMaxmemory: over maxmemory with noeviction, a
// publish with a PublicID is refused whole, though its uniqueness check
// runs first: the check only reads, so the first write is still the one
// Redis refuses, and nothing is written.
func TestRedisPublicIDOverMaxmemory(t *testing.T) {
	srv := startRedisWith(t, "--maxmemory-policy", "noeviction")
	rh := newRedisHub(t, srv, "oomid:")
	ref := redisTopic("m", 100)
	// An id held, so the check has a topic to look into.
	if _, err := pubMsg(rh, ref, Message{Data: "warm", PublicID: "held"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		srv.MustDo(t, "SET", "filler:"+strconv.Itoa(i), strings.Repeat("x", 4096))
	}
	srv.MustDo(t, "CONFIG", "SET", "maxmemory", strconv.FormatInt(srv.InfoInt(t, "used_memory")-100_000, 10))
	if _, err := srv.Do("SET", "probe", "x"); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("Redis is not over maxmemory: SET answered %v", err)
	}
	dbsize := srv.MustDo(t, "DBSIZE")
	seq := srv.Get(t, "oomid:default#seq")
	card := srv.MustDo(t, "ZCARD", "oomid:default#pid:m")
	for _, name := range []string{"m", "fresh"} {
		_, err := pubMsg(rh, redisTopic(name, 100), Message{Data: strings.Repeat("y", 1000), PublicID: "new-" + name, Meta: "meta"})
		if !errors.Is(err, ErrEngineUnavailable) || !strings.Contains(err.Error(), "out of memory") {
			t.Fatalf("publish with a public id to %s over maxmemory: %v", name, err)
		}
	}
	// A duplicate is still answered as one: refusing it writes nothing.
	if _, err := pubMsg(rh, ref, Message{Data: "d", PublicID: "held"}); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("a duplicate over maxmemory: %v", err)
	}
	if got := srv.MustDo(t, "DBSIZE"); got != dbsize {
		t.Fatalf("DBSIZE went from %v to %v", dbsize, got)
	}
	if got := srv.Get(t, "oomid:default#seq"); got != seq {
		t.Fatalf("the counter moved from %s to %s", seq, got)
	}
	if got := srv.MustDo(t, "ZCARD", "oomid:default#pid:m"); got != card {
		t.Fatalf("the id set went from %v to %v entries", card, got)
	}
	if n := srv.MustDo(t, "XLEN", "oomid:default:m"); n != int64(1) {
		t.Fatalf("the stream holds %v entries, want 1", n)
	}
	srv.MustDo(t, "CONFIG", "SET", "maxmemory", "0")
	if _, err := pubMsg(rh, ref, Message{Data: "back", PublicID: "new-m"}); err != nil {
		t.Fatalf("after room was made: %v", err)
	}
}

// TestRedisPublicIDIndexFollowsTheStream: the topic's id set is trimmed,
// expired and reset with its stream, and the set of topics holding ids
// forgets a topic whose ids are all gone.
func TestRedisPublicIDIndexFollowsTheStream(t *testing.T) {
	srv := redistest.Start(t, false)
	rh := newRedisHub(t, srv, "ix:")
	aged := TopicRef{Name: "aged", Ring: RingConfig{Replay: 100, ReplaySize: 1 << 20, ReplayAge: 50 * time.Millisecond}}
	if _, err := pubMsg(rh, aged, Message{Data: "a", PublicID: "gone"}); err != nil {
		t.Fatal(err)
	}
	if ttl := srv.MustDo(t, "PTTL", "ix:default#pid:aged"); ttl.(int64) <= 0 {
		t.Fatalf("the id set of an aged topic has PTTL %v", ttl)
	}
	awaitCond(t, "the aged stream to expire", func() bool { return srv.MustDo(t, "EXISTS", "ix:default:aged") == int64(0) })
	if n := srv.MustDo(t, "EXISTS", "ix:default#pid:aged"); n != int64(0) {
		t.Fatal("the id set outlived its stream")
	}
	// Its id is free, and the stale topic leaves the set of holders.
	plain := redisTopic("plain", 100)
	if _, err := pubMsg(rh, plain, Message{Data: "b", PublicID: "gone"}); err != nil {
		t.Fatal(err)
	}
	members := srv.MustDo(t, "SMEMBERS", "ix:default#pidtopics")
	if l, _ := members.([]any); len(l) != 1 || l[0] != "plain" {
		t.Fatalf("topics holding ids: %v, want [plain]", members)
	}
}
