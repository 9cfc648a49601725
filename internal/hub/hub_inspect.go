package hub

import (
	"context"
	"sort"
)

// Inspecting topics, for the admin API: what one concrete topic holds and
// has seen since the hub began holding it.

// TopicInfo describes one concrete topic.
type TopicInfo struct {
	Name     string `json:"topic"`
	Declared string `json:"declared"` // the declaration it matched: itself, or its pattern
	// Held is false for a declared topic the engine holds nothing of (no
	// event published and no subscriber since it was last forgotten).
	Held        bool   `json:"held"`
	Subscribers int    `json:"subscribers"`
	Retained    int    `json:"retained_events"`
	RetainedB   int64  `json:"retained_bytes"`
	FirstID     string `json:"first_id,omitempty"`
	LastID      string `json:"last_id,omitempty"`
	// Counts since the engine began holding the topic (a forgotten topic
	// starts again from 0; the declaration's counters do not).
	Published uint64 `json:"published"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"` // subscribers dropped by the hub on its events
}

// Topics lists held topics by name after the name after, at most limit.
func (h *Hub) Topics(after string, limit int) ([]TopicInfo, bool) {
	h.mu.Lock()
	names := make([]string, 0, min(len(h.topics), 1024))
	for name := range h.topics {
		if name > after {
			names = append(names, name)
		}
	}
	h.mu.Unlock()
	// Sorted with the lock released: a hub may hold tens of thousands.
	sort.Strings(names)
	more := len(names) > limit
	names = names[:min(len(names), limit)]
	out := make([]TopicInfo, 0, len(names))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range names {
		if t := h.topics[name]; t != nil { // it may have been forgotten meanwhile
			out = append(out, h.infoLocked(t))
		}
	}
	return out, more
}

// Topic describes a held topic.
func (h *Hub) Topic(_ context.Context, name string) (TopicInfo, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		return TopicInfo{}, false
	}
	return h.infoLocked(t), true
}

func (h *Hub) infoLocked(t *topic) TopicInfo {
	t.ring.expire()
	info := TopicInfo{
		Name:        t.name,
		Declared:    t.name,
		Held:        true,
		Subscribers: len(t.subs),
		Retained:    t.ring.len(),
		RetainedB:   t.ring.bytes,
		Published:   t.published,
		Delivered:   t.delivered.Load(),
		Dropped:     t.dropped,
	}
	if t.grp != nil {
		info.Declared = t.grp.name
	}
	if n := t.ring.len(); n > 0 {
		info.FirstID = t.ring.events[t.ring.start].ID.String()
		info.LastID = t.ring.events[len(t.ring.events)-1].ID.String()
	}
	return info
}

// PublicIDsIndexed is how many publisher-chosen ids the hub indexes for
// resuming: never more than the events its rings retain.
func (h *Hub) PublicIDsIndexed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids.len()
}

// PublishersWaiting is how many publishes wait for room (overload.go).
func (h *Hub) PublishersWaiting() int { return int(h.room.waiters.Load()) }
