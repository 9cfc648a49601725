package hub

import "fmt"

// Topic management: finding and creating the topics a call names, making
// room under a pattern's max_topics, forgetting topics. Everything here
// runs under the hub lock, in O(1) per topic named or forgotten.
//
// What may be forgotten to make room, and for whom:
//   - a topic with subscribers: never;
//   - an idle topic that retains no event: by anyone (nothing is lost);
//   - an idle topic that holds history: by a publisher only, least recently
//     used first. A publisher is authorized (token or allow_from) and sized
//     the cap; refusing its new topic because old ones hold history would
//     lock it out until they age out, if ever. A subscriber may be anyone:
//     letting it forget history would let anonymous churn on fresh names
//     erase what a resuming client is owed.
//
// A call's needs are decided whole before anything changes, so a refused
// call has no side effect.

// topicUse says who names topics, which decides what may be forgotten.
type topicUse int

const (
	usePublish   topicUse = iota // may forget idle topics with history
	useSubscribe                 // may forget only idle topics that retain nothing
)

// topicCapError is ErrTooManyTopics naming the declaration and its limit.
type topicCapError struct {
	group      string
	max        int
	fresh      int // new topics the call names
	subscriber bool
}

func (e *topicCapError) Error() string {
	switch {
	case e.fresh > e.max:
		return fmt.Sprintf("%d new topics of %q named at once, more than its max_topics (%d)", e.fresh, e.group, e.max)
	case e.subscriber:
		return fmt.Sprintf("%q holds its max_topics (%d) and none is idle without history: a subscriber forgets no history", e.group, e.max)
	}
	return fmt.Sprintf("%q holds its max_topics (%d) and too many have subscribers to make room for %d more; raise max_topics", e.group, e.max, e.fresh)
}

func (e *topicCapError) Unwrap() error { return ErrTooManyTopics }

// groupRoom is one pattern's part of a call: how many topics it must create
// and forget.
type groupRoom struct {
	name   string
	max    int
	fresh  int
	forget int
}

// prepareTopicsLocked makes every topic the publications name exist in
// h.topics, with its ring settings applied (a reload may have changed
// them), or fails with ErrTooManyTopics having changed nothing. The topics
// it returns with are unlisted (in use): the caller holds them
// (Subscribe) or relists them when done (relistLocked).
func (h *Hub) prepareTopicsLocked(pubs []Publication, use topicUse) error {
	rooms, err := h.planTopicsLocked(pubs, use)
	if err != nil {
		return err
	}
	for _, p := range pubs {
		for _, ref := range p.Topics {
			if t := h.topics[ref.Name]; t != nil {
				if t.ring.cfg != ref.Ring {
					t.ring.setConfig(ref.Ring)
				}
				t.unlist()
			}
		}
	}
	for _, r := range rooms {
		g := h.groups[r.name]
		for range r.forget {
			t := g.empty.front
			if t == nil {
				t = g.retained.front // publish only: the plan counted them
			}
			h.dropTopicLocked(t)
		}
	}
	for _, p := range pubs {
		for _, ref := range p.Topics {
			if h.topics[ref.Name] == nil {
				h.createTopicLocked(ref)
			}
		}
	}
	return nil
}

// planTopicsLocked decides what a call needs: per capped pattern, the new
// topics and how many idle ones must go. It changes nothing a client can
// see: it marks the call's existing topics (pinned) and may refile a topic
// whose history has aged out as empty. The common call, naming topics
// that exist, allocates nothing.
func (h *Hub) planTopicsLocked(pubs []Publication, use topicUse) ([]groupRoom, error) {
	var rooms []groupRoom
	var firstFresh string
	var fresh map[string]struct{}
	for _, p := range pubs {
		for _, ref := range p.Topics {
			if t := h.topics[ref.Name]; t != nil {
				t.pinned = h.op
				continue
			}
			if ref.Group == "" || ref.GroupMax <= 0 {
				continue // uncapped
			}
			// The same new name twice in a call is one topic.
			switch {
			case firstFresh == "":
				firstFresh = ref.Name
			case fresh == nil && ref.Name == firstFresh:
				continue
			default:
				if fresh == nil {
					fresh = map[string]struct{}{firstFresh: {}}
				}
				if _, dup := fresh[ref.Name]; dup {
					continue
				}
				fresh[ref.Name] = struct{}{}
			}
			i := 0
			for i < len(rooms) && rooms[i].name != ref.Group {
				i++
			}
			if i == len(rooms) {
				rooms = append(rooms, groupRoom{name: ref.Group, max: ref.GroupMax})
			}
			rooms[i].fresh++
		}
	}
	for i := range rooms {
		r := &rooms[i]
		g := h.groups[r.name]
		size := 0
		if g != nil {
			size = g.size
		}
		r.forget = size + r.fresh - r.max
		if r.forget <= 0 {
			r.forget = 0
			continue
		}
		capErr := &topicCapError{group: r.name, max: r.max, fresh: r.fresh, subscriber: use == useSubscribe}
		if g == nil || r.fresh > r.max {
			return nil, capErr
		}
		// Idle topics this call names are in use, not candidates.
		var pinnedEmpty, pinnedRetained int
		seen := make(map[*topic]struct{})
		for _, p := range pubs {
			for _, ref := range p.Topics {
				t := h.topics[ref.Name]
				if t == nil || t.grp != g || t.list == nil {
					continue
				}
				if _, dup := seen[t]; dup {
					continue
				}
				seen[t] = struct{}{}
				if t.list == &g.empty {
					pinnedEmpty++
				} else {
					pinnedRetained++
				}
			}
		}
		avail := g.empty.n - pinnedEmpty
		if use == useSubscribe {
			avail += h.reclaimAgedLocked(g, r.forget-avail)
		} else {
			avail += g.retained.n - pinnedRetained
		}
		if avail < r.forget {
			return nil, capErr
		}
	}
	return rooms, nil
}

// reclaimAgedLocked refiles as empty up to n of g's least recently used
// topics whose history has since aged out or been trimmed away, so that a
// subscriber may forget them. It stops at the first that still retains
// something (or that the current call uses) and reports how many it moved.
func (h *Hub) reclaimAgedLocked(g *topicGroup, n int) int {
	moved := 0
	for moved < n {
		t := g.retained.front
		if t == nil || t.pinned == h.op {
			break
		}
		t.ring.expire()
		if t.ring.len() > 0 {
			break
		}
		g.retained.remove(t)
		g.empty.pushFront(t) // the least recently used of all: forgotten first
		moved++
	}
	return moved
}

// relistLocked files the topics of a finished publish as idle again, most
// recently used, by what their rings now hold.
func (h *Hub) relistLocked(pubs []Publication) {
	for _, p := range pubs {
		for _, ref := range p.Topics {
			if t := h.topics[ref.Name]; t != nil {
				t.relist()
			}
		}
	}
}

func (h *Hub) createTopicLocked(ref TopicRef) {
	t := &topic{name: ref.Name, ring: newRing(ref.Ring), subs: make(map[*Subscription]struct{}), pinned: h.op,
		ctr: h.counters.Topic(DeclaredName(ref))}
	t.ring.ids = &h.ids
	// A topic that was forgotten may have held events; whoever resumes
	// on it must be told they may have missed them.
	t.ring.evictedSeq = h.forgottenSeq
	h.topics[ref.Name] = t
	if ref.Group != "" {
		g := h.groups[ref.Group]
		if g == nil {
			g = &topicGroup{name: ref.Group}
			h.groups[ref.Group] = g
		}
		g.size++
		t.grp = g
	}
}

// dropTopicLocked forgets an idle topic. A topic recreated later starts
// with evictedSeq at h.forgottenSeq: the hub cannot tell it from a topic it
// never had, so a resume from before the newest event it forgot gets a
// reset.
func (h *Hub) dropTopicLocked(t *topic) {
	last := t.ring.evictedSeq
	if n := len(t.ring.events); t.ring.len() > 0 {
		last = max(last, t.ring.events[n-1].ID.Seq)
	}
	h.forgottenSeq = max(h.forgottenSeq, last)
	t.ring.forget() // its events' PublicIDs are free again
	t.unlist()
	delete(h.topics, t.name)
	if g := t.grp; g != nil {
		g.size--
		if g.size == 0 {
			delete(h.groups, g.name)
		}
	}
}

// Prune forgets every idle topic for which keep reports false: after a
// reload, topics no longer declared stop holding memory.
func (h *Hub) Prune(keep func(name string) (RingConfig, bool)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.topics {
		cfg, ok := keep(t.name)
		if !ok {
			if len(t.subs) == 0 {
				h.dropTopicLocked(t)
			}
			continue
		}
		if t.ring.cfg != cfg {
			t.ring.setConfig(cfg)
			if t.ring.len() == 0 && t.grp != nil && t.list == &t.grp.retained {
				// Its history is gone (replay 0, say): subscribers may
				// now forget it.
				t.grp.retained.remove(t)
				t.grp.empty.pushBack(t)
			}
		}
	}
}
