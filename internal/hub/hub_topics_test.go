package hub

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func hubTopicsTestRef(n string, groupMax int) TopicRef {
	return hubTestGroupRef("room/"+n, "room/*", groupMax)
}

// hubTopicsTestState is what a refused call must leave as it was: every
// topic and what its ring holds, and the hub's position.
func hubTopicsTestState(h *Hub) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var lines []string
	for name, t := range h.topics {
		lines = append(lines, fmt.Sprintf("%s: %d events, evicted %d, %d subs", name, t.ring.len(), t.ring.evictedSeq, len(t.subs)))
	}
	slices.Sort(lines)
	return fmt.Sprintf("seq %d, forgotten %d\n%s", h.seq, h.forgottenSeq, strings.Join(lines, "\n"))
}

// hubTopicsTestCheck verifies the bookkeeping of every group: its size,
// and every idle topic in exactly the list its ring says (a topic that
// retains events is never in the empty list).
func hubTopicsTestCheck(t *testing.T, h *Hub) {
	t.Helper()
	if err := h.CheckTopics(); err != nil {
		t.Fatal(err)
	}
}

// Anonymous churn: subscribers name fresh rooms and leave, far more of
// them than the cap. An idle room that holds history survives it and a
// resume on it replays everything with no reset; the churned rooms are
// recycled among themselves.
func TestHubSubscribeChurnKeepsHistory(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTopicsTestRef(n, 8) }
	for i := 0; i < 3; i++ {
		hubTestPublish(t, h, "important", ref("important"))
	}
	for i := 0; i < 1000; i++ {
		s, _, err := h.Subscribe([]TopicRef{ref(fmt.Sprintf("churn-%d", i))}, "", 4)
		if err != nil {
			t.Fatalf("churn subscribe %d: %v (rooms that retain nothing must be recycled)", i, err)
		}
		s.Close()
	}
	hubTopicsTestCheck(t, h)
	if n := h.Stats().Topics; n != 8 {
		t.Fatalf("%d topics held after churn, want the cap, 8", n)
	}
	_, rp := hubTestSubscribe(t, h, []TopicRef{ref("important")}, hubTestResume(h, 0), 8)
	if rp.Reset != nil {
		t.Fatalf("resume on room/important after churn: reset %+v (its history was forgotten)", rp.Reset)
	}
	if got := hubTestSeqs(rp.Events); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Fatalf("room/important replayed %v, want [1 2 3]", got)
	}
}

// A declaration full of idle rooms that hold history: a subscriber of a new
// room is refused (the handler tells it to come back later) and nothing is
// forgotten; a publisher may forget the least recently used of them.
func TestHubSubscribeNeverForgetsHistory(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTopicsTestRef(n, 2) }
	hubTestPublish(t, h, "a", ref("a"))
	hubTestPublish(t, h, "b", ref("b"))
	before := hubTopicsTestState(h)
	_, _, err := h.Subscribe([]TopicRef{ref("c")}, "", 4)
	if !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("Subscribe to a new room with the cap full of history = %v, want ErrTooManyTopics", err)
	}
	if !strings.Contains(err.Error(), `"room/*"`) || !strings.Contains(err.Error(), "max_topics (2)") {
		t.Fatalf("error %q does not name the declaration and its limit", err)
	}
	if after := hubTopicsTestState(h); after != before {
		t.Fatalf("a refused subscribe changed the hub:\nbefore %s\nafter  %s", before, after)
	}
	// An existing room is served as ever.
	hubTestSubscribe(t, h, []TopicRef{ref("a")}, "", 4)
	// A publisher's new room forgets the least recently used idle one:
	// room/b (room/a has a subscriber now).
	hubTestPublish(t, h, "c", ref("c"))
	if got, want := hubTestTopicNames(h), []string{"room/a", "room/c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}
	hubTopicsTestCheck(t, h)
}

// A publisher forgets idle rooms that retain nothing before any that hold
// history, and among those the least recently used first.
func TestHubPublishForgetsEmptyBeforeHistory(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTopicsTestRef(n, 3) }
	hubTestPublish(t, h, "a", ref("a")) // oldest, with history
	s, _ := hubTestSubscribe(t, h, []TopicRef{ref("b")}, "", 4)
	s.Close()                           // room/b: idle, empty
	hubTestPublish(t, h, "c", ref("c")) // with history
	hubTestPublish(t, h, "a2", ref("a"))
	hubTestPublish(t, h, "d", ref("d")) // forgets room/b, though room/a was created first
	if got, want := hubTestTopicNames(h), []string{"room/a", "room/c", "room/d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}
	hubTestPublish(t, h, "e", ref("e")) // forgets room/c: room/a was published to since
	if got, want := hubTestTopicNames(h), []string{"room/a", "room/d", "room/e"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}
	// The forgotten room's resumers are told; resuming from after its last
	// event is no gap, the hub remembers that much. (The cap is raised: a
	// subscriber does not forget history to make room.)
	ref = func(n string) TopicRef { return hubTopicsTestRef(n, 10) }
	_, rp := hubTestSubscribe(t, h, []TopicRef{ref("c")}, hubTestResume(h, 1), 4)
	if rp.Reset == nil || rp.Reset.Reason != "evicted" || rp.Reset.ID.Seq != 2 {
		t.Fatalf("resume on forgotten room/c from 1: reset %+v, want evicted at 2", rp.Reset)
	}
	_, rp = hubTestSubscribe(t, h, []TopicRef{ref("c")}, hubTestResume(h, 2), 4)
	if rp.Reset != nil {
		t.Fatalf("resume on forgotten room/c from its last event: reset %+v", rp.Reset)
	}
	hubTopicsTestCheck(t, h)
}

// A refused publish has no side effect: an event naming more new rooms than
// can be made room for forgets nothing, creates nothing, publishes nothing.
func TestHubRefusedPublishChangesNothing(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		held    int // rooms with a subscriber
		idle    int // idle rooms with history
		newOnes int // new rooms the event names
	}{
		{"more new rooms than the cap", 50, 0, 40, 60},
		{"too few idle rooms to forget", 5, 3, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub()
			ref := func(n string) TopicRef { return hubTopicsTestRef(n, tc.max) }
			for i := 0; i < tc.held; i++ {
				hubTestSubscribe(t, h, []TopicRef{ref(fmt.Sprintf("held-%d", i))}, "", 4)
			}
			for i := 0; i < tc.idle; i++ {
				hubTestPublish(t, h, "x", ref(fmt.Sprintf("idle-%d", i)))
			}
			before := hubTopicsTestState(h)
			refs := []TopicRef{ref("idle-0")} // an existing room too
			for i := 0; i < tc.newOnes; i++ {
				refs = append(refs, ref(fmt.Sprintf("new-%d", i)))
			}
			_, err := h.publish([]Publication{{Message: &Message{Data: "refused"}, Topics: refs}})
			if !errors.Is(err, ErrTooManyTopics) {
				t.Fatalf("Publish = %v, want ErrTooManyTopics", err)
			}
			if after := hubTopicsTestState(h); after != before {
				t.Fatalf("a refused publish changed the hub:\nbefore %s\nafter  %s", before, after)
			}
			_, rp := hubTestSubscribe(t, h, []TopicRef{ref("idle-1")}, hubTestResume(h, 0), 4)
			if rp.Reset != nil || len(rp.Events) != 1 {
				t.Fatalf("resume on an idle room after the refusal: reset %+v, %d events; want its event, no reset", rp.Reset, len(rp.Events))
			}
			hubTopicsTestCheck(t, h)
		})
	}
}

// With replay_age, history that has aged out no longer protects a room from
// subscribers: the cap does not stay full of expired rooms.
func TestHubSubscribeReclaimsAgedHistory(t *testing.T) {
	set := replayTestClock(t)
	h := NewHub()
	aged := RingConfig{Replay: 10, ReplaySize: 1 << 20, ReplayAge: time.Minute}
	ref := func(n string) TopicRef {
		return TopicRef{Name: "room/" + n, Ring: aged, Group: "room/*", GroupMax: 2}
	}
	hubTestPublish(t, h, "a", ref("a"))
	hubTestPublish(t, h, "b", ref("b"))
	if _, _, err := h.Subscribe([]TopicRef{ref("c")}, "", 4); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("Subscribe before the history aged = %v, want ErrTooManyTopics", err)
	}
	set(replayTestT0.Add(2 * time.Minute))
	hubTestSubscribe(t, h, []TopicRef{ref("c")}, "", 4)
	if got, want := hubTestTopicNames(h), []string{"room/b", "room/c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics %v, want %v (room/a, least recently used, aged out)", got, want)
	}
	hubTopicsTestCheck(t, h)
}

// A reload that leaves a pattern's rooms nothing to retain (replay 0) lets
// subscribers recycle them.
func TestHubPruneEmptiedRoomsAreRecycled(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTopicsTestRef(n, 2) }
	hubTestPublish(t, h, "a", ref("a"))
	hubTestPublish(t, h, "b", ref("b"))
	none := RingConfig{Replay: 0, ReplaySize: 1 << 20}
	h.Prune(func(string) (RingConfig, bool) { return none, true })
	hubTopicsTestCheck(t, h)
	c := ref("c")
	c.Ring = none
	hubTestSubscribe(t, h, []TopicRef{c}, "", 4)
	if n := h.Stats().Topics; n != 2 {
		t.Fatalf("%d topics, want 2", n)
	}
}

// A subscriber dropped during a publish leaves the event's other topics
// idle before the event is appended to them; they must still be filed as
// holding history once the publish is done, or the next subscriber churn
// forgets them.
func TestHubTopicDroppedDuringFanOutKeepsHistory(t *testing.T) {
	h := NewHub()
	ref := func(n string) TopicRef { return hubTopicsTestRef(n, 2) }
	s, _, err := h.Subscribe([]TopicRef{ref("a"), ref("b")}, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.blockedSince.Store(1) // its socket took nothing for ages: dropped once full
	hubTestPublish(t, h, "fills the queue", ref("a"))
	hubTestPublish(t, h, "overflows it", ref("a"), ref("b"))
	if !hubTestIsClosed(s.Done()) {
		t.Fatal("the subscriber was not dropped for its full queue")
	}
	hubTopicsTestCheck(t, h)
	if _, _, err := h.Subscribe([]TopicRef{ref("c")}, "", 4); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("Subscribe to a new room = %v, want ErrTooManyTopics: room/a and room/b hold history", err)
	}
}

// Random calls against small caps: the bookkeeping stays consistent, a
// subscribe never forgets a topic that retains events, and a refused call
// changes nothing.
func TestHubTopicsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	h := NewHub()
	groups := []struct {
		name string
		max  int
	}{{"room/*", 6}, {"user/*", 3}}
	ref := func() TopicRef {
		g := groups[rng.IntN(len(groups))]
		if rng.IntN(8) == 0 {
			return hubTestRefs(fmt.Sprintf("lit-%d", rng.IntN(3)))[0]
		}
		return TopicRef{Name: fmt.Sprintf("%s%d", strings.TrimSuffix(g.name, "*"), rng.IntN(12)),
			Ring: RingConfig{Replay: rng.IntN(2) * 4, ReplaySize: 1 << 20}, Group: g.name, GroupMax: g.max}
	}
	refs := func() []TopicRef {
		out := make([]TopicRef, 1+rng.IntN(4))
		for i := range out {
			out[i] = ref()
		}
		return out
	}
	var open []*Subscription
	for step := 0; step < 20000; step++ {
		switch op := rng.IntN(10); {
		case op < 4:
			before := hubTopicsTestState(h)
			pubs := []Publication{{Message: &Message{Data: "x"}, Topics: refs()}}
			if rng.IntN(3) == 0 {
				pubs = append(pubs, Publication{Message: &Message{Data: "y"}, Topics: refs()})
			}
			if _, err := h.publish(pubs); err != nil {
				if !errors.Is(err, ErrTooManyTopics) {
					t.Fatalf("step %d: Publish = %v", step, err)
				}
				if after := hubTopicsTestState(h); after != before {
					t.Fatalf("step %d: a refused publish changed the hub:\nbefore %s\nafter  %s", step, before, after)
				}
			}
		case op < 8:
			before := hubTopicsTestState(h)
			h.mu.Lock()
			var history []string
			for name, tp := range h.topics {
				if tp.ring.len() > 0 {
					history = append(history, name)
				}
			}
			h.mu.Unlock()
			s, _, err := h.Subscribe(refs(), "", 64)
			if err != nil {
				if !errors.Is(err, ErrTooManyTopics) {
					t.Fatalf("step %d: Subscribe = %v", step, err)
				}
				if after := hubTopicsTestState(h); after != before {
					t.Fatalf("step %d: a refused subscribe changed the hub:\nbefore %s\nafter  %s", step, before, after)
				}
				break
			}
			s.blockedSince.Store(1) // never read: dropped once full, as a dead peer
			open = append(open, s)
			h.mu.Lock()
			for _, name := range history {
				if h.topics[name] == nil {
					h.mu.Unlock()
					t.Fatalf("step %d: a subscribe forgot %s, which retained events", step, name)
				}
			}
			h.mu.Unlock()
		default:
			if len(open) > 0 {
				i := rng.IntN(len(open))
				open[i].Close()
				open = slices.Delete(open, i, i+1)
			}
		}
		if step%97 == 0 {
			hubTopicsTestCheck(t, h)
		}
		for _, g := range groups {
			h.mu.Lock()
			n := 0
			if grp := h.groups[g.name]; grp != nil {
				n = grp.size
			}
			h.mu.Unlock()
			if n > g.max {
				t.Fatalf("step %d: %s holds %d topics, over its cap %d", step, g.name, n, g.max)
			}
		}
	}
	hubTopicsTestCheck(t, h)
}
