package hub

import (
	"fmt"
	"testing"
	"time"
)

func countersTestSnap(t *testing.T, h *Hub, declared string) TopicSnapshot {
	t.Helper()
	s, ok := h.Counters().Snapshot(declared)
	if !ok {
		t.Fatalf("no counters for %q; have %v", declared, h.Counters().Declared())
	}
	return s
}

// Published and delivered count per declared topic: the concrete topics of
// a pattern add up under the pattern, and a subscriber of two of an
// event's topics is one delivery.
func TestCountersPublishedDelivered(t *testing.T) {
	h := NewHub()
	news := hubTestRefs("news")[0]
	a := hubTestGroupRef("chat/a", "chat/*", 100)
	b := hubTestGroupRef("chat/b", "chat/*", 100)
	hubTestSubscribe(t, h, []TopicRef{news}, "", 16)
	hubTestSubscribe(t, h, []TopicRef{a, b}, "", 16) // one subscriber, two topics of one pattern
	hubTestSubscribe(t, h, []TopicRef{b}, "", 16)

	hubTestPublish(t, h, "1", news)
	hubTestPublish(t, h, "2", a)
	hubTestPublish(t, h, "3", a, b) // reaches the a+b subscriber once, the b one once

	if s := countersTestSnap(t, h, "news"); s.Published != 1 || s.Delivered != 1 || s.Subscribers != 1 {
		t.Fatalf("news: %+v, want published 1, delivered 1, subscribers 1", s)
	}
	// chat/*: published 3 (one to a, one to each of a and b), delivered 1 + 2.
	if s := countersTestSnap(t, h, "chat/*"); s.Published != 3 || s.Delivered != 3 || s.Subscribers != 2 {
		t.Fatalf("chat/*: %+v, want published 3, delivered 3, subscribers 2", s)
	}
	if _, ok := h.Counters().Snapshot("chat/a"); ok {
		t.Fatal("a concrete topic of a pattern has counters of its own: cardinality would follow clients")
	}
}

// The subscribers gauge follows subscribes and closes, and counters
// survive the topic being forgotten.
func TestCountersSurviveForgottenTopics(t *testing.T) {
	h := NewHub()
	ref := hubTestGroupRef("room/1", "room/*", 1)
	s, _ := hubTestSubscribe(t, h, []TopicRef{ref}, "", 4)
	hubTestPublish(t, h, "x", ref)
	if n := countersTestSnap(t, h, "room/*").Subscribers; n != 1 {
		t.Fatalf("subscribers = %d, want 1", n)
	}
	s.Close()
	if n := countersTestSnap(t, h, "room/*").Subscribers; n != 0 {
		t.Fatalf("subscribers after close = %d, want 0", n)
	}
	// max_topics 1: publishing to room/2 forgets room/1.
	hubTestPublish(t, h, "y", hubTestGroupRef("room/2", "room/*", 1))
	if got := hubTestTopicNames(h); len(got) != 1 || got[0] != "room/2" {
		t.Fatalf("topics = %v, want room/1 forgotten", got)
	}
	if s := countersTestSnap(t, h, "room/*"); s.Published != 2 || s.Delivered != 1 {
		t.Fatalf("room/*: %+v, want published 2, delivered 1 kept across the forgetting", s)
	}
}

// A slow subscriber dropped by the hub counts once, as slow, in each of
// its declarations; a later Drop with another reason does not count.
func TestCountersDroppedSlow(t *testing.T) {
	h := NewHub()
	stuck, _ := hubTestSubscribe(t, h, hubTestRefs("a", "b"), "", 1)
	stuckFor(stuck, stuckAfter)
	for i := range 3 {
		if _, err := overloadTestPublish(h, time.Second, fmt.Sprint(i), hubTestRefs("a")...); err != nil {
			t.Fatal(err)
		}
	}
	if !hubTestIsClosed(stuck.Done()) {
		t.Fatal("the stuck subscriber was not dropped")
	}
	if r := stuck.DropReason(); r != DropSlow {
		t.Fatalf("drop reason %v, want slow", r)
	}
	if stuck.Drop(DropShutdown) {
		t.Fatal("a second drop of one stream counted")
	}
	for _, name := range []string{"a", "b"} {
		s := countersTestSnap(t, h, name)
		if s.Dropped[DropSlow] != 1 || s.Dropped[DropShutdown] != 0 || s.Subscribers != 0 {
			t.Fatalf("%s: %+v, want one slow drop and no subscriber", name, s)
		}
	}
}

// Closing the hub counts its subscribers as dropped for shutdown.
func TestCountersDroppedShutdown(t *testing.T) {
	h := NewHub()
	hubTestSubscribe(t, h, hubTestRefs("a"), "", 4)
	_ = h.Close()
	if s := countersTestSnap(t, h, "a"); s.Dropped[DropShutdown] != 1 {
		t.Fatalf("%+v, want one shutdown drop", s)
	}
}

// Replays count the events sent from history, and resets count by reason.
func TestCountersReplayAndResets(t *testing.T) {
	h := NewHub()
	small := TopicRef{Name: "small", Ring: RingConfig{Replay: 2, ReplaySize: 1 << 20}}
	first := hubTestPublish(t, h, "1", small)
	hubTestPublish(t, h, "2", small)
	hubTestPublish(t, h, "3", small)

	// Resuming after 2: event 3 is replayed, no reset.
	hubTestSubscribe(t, h, []TopicRef{small}, hubTestResume(h, 2), 8)
	// Resuming after 1 (evicted itself, but nothing after it was): 2 and
	// 3 are replayed.
	hubTestSubscribe(t, h, []TopicRef{small}, first.ID, 8)
	// Resuming from before anything (seq 0 of this epoch): 1 is gone.
	_, rp := hubTestSubscribe(t, h, []TopicRef{small}, hubTestResume(h, 0), 8)
	if rp.Reset == nil || rp.Reset.Reason != "evicted" {
		t.Fatalf("replay %+v, want an evicted reset", rp)
	}
	// A malformed id: unknown.
	hubTestSubscribe(t, h, []TopicRef{small}, "garbage", 8)

	s := countersTestSnap(t, h, "small")
	// 1 + 2 + 2 (after the evicted reset at seq 1: events 2 and 3).
	if s.Replayed != 5 {
		t.Fatalf("replayed = %d, want 5", s.Replayed)
	}
	if s.Resets[resetEvicted] != 1 || s.Resets[resetUnknown] != 1 {
		t.Fatalf("resets = %v, want one evicted, one unknown", s.Resets)
	}
}

// The publish histogram puts durations in the right buckets, cumulated,
// and refusals count by status.
func TestCountersPublishes(t *testing.T) {
	c := newHubCounters()
	c.ObservePublish(50 * time.Microsecond) // <= .0001
	c.ObservePublish(3 * time.Millisecond)  // <= .005
	c.ObservePublish(time.Minute)           // +Inf only
	c.Reject(503)
	c.Reject(503)
	c.Reject(404)
	c.Reject(200) // not a refusal: ignored
	p := c.Publishes()
	if p.Count != 3 {
		t.Fatalf("count = %d, want 3", p.Count)
	}
	want := map[float64]uint64{.0001: 1, .0025: 1, .005: 2, 10: 2}
	for i, b := range PublishBuckets {
		if w, ok := want[b]; ok && p.Buckets[i] != w {
			t.Fatalf("bucket le=%v = %d, want %d (all: %v)", b, p.Buckets[i], w, p.Buckets)
		}
	}
	if d := p.Sum - 60.00305; d > 1e-6 || d < -1e-6 {
		t.Fatalf("sum = %v, want 60.00305", p.Sum)
	}
	if len(p.Rejected) != 2 || p.Rejected[503] != 2 || p.Rejected[404] != 1 {
		t.Fatalf("rejected = %v", p.Rejected)
	}
}

// The Redis engine's local half counts deliveries and drops through the
// same fan-out: a delivery forced past its wait drops a reader as
// overloaded, not slow.
func TestCountersForcedDeliveryIsOverload(t *testing.T) {
	h := NewRemoteHub()
	h.Adopt("e", 0)
	sub, _, err := h.register(hubTestRefs("news"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	evs := func(seq uint64) []RemoteEvent {
		id := ID{Epoch: "e", Seq: seq}
		return []RemoteEvent{{Event: &Event{ID: id, Wire: EncodeEvent(id, &Message{Data: "x"})}, Topics: []string{"news"}}}
	}
	h.Deliver(evs(1)) // fills the queue of 1
	// Forced: what deliver does once deliverWait has passed.
	h.mu.Lock()
	h.op++
	notify := takeNotifyList()
	h.queueLocked(h.topics["news"], evs(2)[0].Event, notify, nil, true)
	h.mu.Unlock()
	putNotifyList(notify)
	if r := sub.DropReason(); r != DropOverload {
		t.Fatalf("drop reason %v, want overload", r)
	}
	if s := countersTestSnap(t, h, "news"); s.Delivered != 1 || s.Dropped[DropOverload] != 1 || s.Published != 0 {
		t.Fatalf("%+v, want 1 delivered, 1 overload drop, none published here", s)
	}
}
