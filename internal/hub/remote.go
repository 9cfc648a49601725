package hub

import "context"

// The Redis engine assigns ids and keeps rings in Redis; each instance's Hub
// then only fans out, to its own subscribers, the events Redis hands it in
// id order. These methods are that local half. Rings stay empty.

// RemoteEvent is an event whose id was assigned elsewhere, with the names of
// the topics it was published to.
type RemoteEvent struct {
	Event  *Event
	Topics []string
}

// NewRemoteHub returns a hub that has no epoch until the engine adopts one.
func NewRemoteHub() *Hub {
	h := NewHub()
	h.epoch = ""
	return h
}

// Deliver queues events, in order, for the local subscribers of their
// topics. It creates no topic: an event for a topic nobody here subscribes
// to has no one to reach.
//
// Like a publish, it waits while subscribers that are reading lack room
// (overload.go), but only for deliverWait: the events are published
// already, so past it the subscribers still full are dropped and resume by
// id.
func (h *Hub) Deliver(evs []RemoteEvent) {
	notify := takeNotifyList()
	defer putNotifyList(notify)
	waiter := newRoomWaiter(h, context.Background(), deliverWait)
	defer waiter.release()
	forced := false
	for {
		waiter.arm()
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		if forced || h.admitRemoteLocked(evs) {
			break // holding the lock
		}
		h.mu.Unlock()
		forced = !waiter.wait()
	}
	h.op++
	for _, re := range evs {
		seq := re.Event.ID.Seq
		h.seq = seq
		for _, name := range re.Topics {
			t := h.topics[name]
			if t == nil {
				continue
			}
			h.queueLocked(t, re.Event, notify, nil, forced)
		}
		h.published++
	}
	h.mu.Unlock()
	h.dispatch(notify)
}

// admitRemoteLocked is admitLocked for events published elsewhere.
func (h *Hub) admitRemoteLocked(evs []RemoteEvent) bool {
	return h.admitTopicsLocked(func(yield func(string) bool) {
		for _, re := range evs {
			for _, name := range re.Topics {
				if !yield(name) {
					return
				}
			}
		}
	})
}

// Adopt moves the hub to an epoch and position: on the engine's first
// connection, or when Redis came back without the old epoch. Per-subscriber
// bookkeeping in seq numbers belongs to the old epoch and is cleared.
func (h *Hub) Adopt(epoch string, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed := h.epoch != "" && h.epoch != epoch
	h.epoch, h.seq = epoch, seq
	if !changed {
		return
	}
	for _, t := range h.topics {
		for s := range t.subs {
			s.lastSeq = 0
			s.skipThrough.Store(0)
		}
	}
}

// Position is the id of the last event delivered here.
func (h *Hub) Position() ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return ID{Epoch: h.epoch, Seq: h.seq}
}

// SkipThrough makes s ignore live events up to seq: its replay covered them
// (or a reset declared them missed). Events already queued are removed, and
// a filter batch still being filtered (fanout_filter.go) skips them when
// it is queued.
func (h *Hub) SkipThrough(s *Subscription, seq uint64) {
	h.mu.Lock()
	s.skipThrough.Store(max(s.skipThrough.Load(), seq))
	h.mu.Unlock()
	s.mu.Lock()
	kept := s.pending[:0]
	for _, ev := range s.pending {
		if ev.ID.Seq > seq {
			kept = append(kept, ev)
		}
	}
	clear(s.pending[len(kept):])
	s.pending = kept
	s.pendingBytes = 0
	for _, ev := range kept {
		s.pendingBytes += int64(len(ev.Wire))
	}
	s.updateFullLocked()
	s.mu.Unlock()
}

// LocalSubscribers counts this hub's subscribers of the named topics, each
// once: the "delivered" of a publish through a shared engine.
func (h *Hub) LocalSubscribers(names []string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(names) == 1 {
		if t := h.topics[names[0]]; t != nil {
			return len(t.subs)
		}
		return 0
	}
	seen := make(map[*Subscription]struct{})
	for _, name := range names {
		if t := h.topics[name]; t != nil {
			for s := range t.subs {
				seen[s] = struct{}{}
			}
		}
	}
	return len(seen)
}

// DropAll drops every subscriber; they resume by id. It is what an instance
// does when it cannot tell which events its subscribers missed.
func (h *Hub) DropAll() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, t := range h.topics {
		for s := range t.subs {
			if !s.removed {
				n++
			}
			s.Drop(DropOverload)
			h.removeLocked(s, true)
		}
	}
	h.dropped += uint64(n)
	return n
}

// Active reports whether s is still registered.
func (s *Subscription) Active() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return !s.removed
}
