package hub

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHubPublicIDsFollowTheRings: an event stops being a resume point once
// it ages out (before any publish trims it) or its topic is forgotten, and
// an event of two topics stays one for the subscribers of the topic that
// still retains it.
func TestHubPublicIDsFollowTheRings(t *testing.T) {
	set := replayTestClock(t)
	h := NewHub()
	aged := TopicRef{Name: "aged", Ring: RingConfig{Replay: 100, ReplaySize: 1 << 20, ReplayAge: time.Minute}}
	short, long := seamTopic("short", 1), seamTopic("long", 100)
	mustPub(t, h, aged, Message{Data: "a", PublicID: "old"})
	set(replayTestT0.Add(2 * time.Minute))
	if _, rp := subWith(t, h, []TopicRef{aged}, SubscribeOptions{Resume: "old"}); rp.Reset == nil {
		t.Fatalf("an aged-out event resumed: %v", datas(rp.Events))
	}

	both := []Publication{{Message: &Message{Data: "two", PublicID: "both"}, Topics: []TopicRef{short, long}}}
	if _, err := publishTo(h, both); err != nil {
		t.Fatal(err)
	}
	mustPub(t, h, short, Message{Data: "evicts both from short"})
	if _, rp := subWith(t, h, []TopicRef{short}, SubscribeOptions{Resume: "both"}); rp.Reset == nil || rp.Reset.Reason != "unknown" {
		t.Fatalf("short no longer retains it: %+v %v", rp.Reset, datas(rp.Events))
	}
	s, rp := subWith(t, h, []TopicRef{long}, SubscribeOptions{Resume: "both"})
	if rp.Reset != nil {
		t.Fatalf("long still retains it: %+v", rp.Reset)
	}
	s.Close() // a topic with a subscriber is not forgotten
	h.mu.Lock()
	n := h.ids.len()
	h.mu.Unlock()
	if n != 1 {
		t.Fatalf("the index holds %d entries, want 1 (both, held by long; old aged out)", n)
	}
	h.Prune(func(name string) (RingConfig, bool) { return hubTestRing, name != "long" && name != "aged" })
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.ids.len(); n != 0 {
		t.Fatalf("the index holds %d entries after the topics were forgotten, want 0", n)
	}
}

// TestEventDecodedOnce: a filter run for many subscribers decodes an
// event's metadata once, and concurrent callers agree.
func TestEventDecodedOnce(t *testing.T) {
	h := NewHub()
	ref := seamTopic("d", 10)
	var decodes atomic.Int64
	decode := func(meta string) any {
		decodes.Add(1)
		return strings.Split(meta, ",")
	}
	filter := func(ev *Event) bool { return ev.Decoded(decode).([]string)[0] == "keep" }
	for range 100 {
		subWith(t, h, []TopicRef{ref}, SubscribeOptions{Filter: filter})
	}
	res := mustPub(t, h, ref, Message{Data: "x", Meta: "keep,1"})
	if res.Delivered != 100 || decodes.Load() != 1 {
		t.Fatalf("delivered %d with %d decodes, want 100 with 1", res.Delivered, decodes.Load())
	}
	ev := &Event{Meta: "a,b"}
	var wg sync.WaitGroup
	results := make([]any, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = ev.Decoded(decode)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if fmt.Sprint(r) != "[a b]" || &r.([]string)[0] != &results[0].([]string)[0] {
			t.Fatalf("callers got different decoded values")
		}
	}
}

func TestValidPublicID(t *testing.T) {
	for _, ok := range []string{"a", "urn:uuid:e1ee88e2-532a-4d6f-ba70-f0f8bd584022", "https://example.com/x#frag", "é", strings.Repeat("i", 1<<16)} {
		if err := ValidPublicID(ok); err != nil {
			t.Errorf("ValidPublicID(%q) = %v", Truncate(ok, 20), err)
		}
	}
	for _, bad := range []string{"", "#1", "a\nb", "a\rb", "a\x00b", "\xff"} {
		if err := ValidPublicID(bad); err == nil {
			t.Errorf("ValidPublicID(%q) accepted", Truncate(bad, 20))
		}
	}
	for id, want := range map[string]bool{"abc-1": true, "abc-": false, "abc-1x": false, "abcd-1": false, "xabc-1": false} {
		if got := inHubIDSpace(id, "abc"); got != want {
			t.Errorf("inHubIDSpace(%q, abc) = %v", id, got)
		}
	}
}
