package hub

import "sync/atomic"

// The fan-out both engines share: the memory Hub publishes through it, and
// the Redis engine delivers through it what its bus reader hands over
// (remote.go). Subscribers register with their topics here, are offered
// events under the hub lock (queueLocked), filtered (fanout_filter.go) and
// told afterwards (notify.go), and make publishers wait while they are
// behind (overload.go).

// queueLocked offers ev to t's subscribers and collects them for notify.
// A subscriber of several of the event's topics gets it once, and one whose
// replay already covered it (Redis engine) not at all. A full queue drops
// the subscriber: admitLocked let the publish through, so it is one whose
// socket has stopped taking bytes. It returns how many it was queued for.
//
// A filtered subscriber is not judged here, under the lock: the event is
// staged for it, once (lastSeq), and its filter runs after the lock is
// released (fanout_filter.go), counting into count (nil: not kept) what it
// accepts. forced says the delivery did not wait for room (Redis).
func (h *Hub) queueLocked(t *topic, ev *Event, notify *notifyList, count *atomic.Int64, forced bool) int {
	seq, queued := ev.ID.Seq, 0
	for s := range t.subs {
		if s.lastSeq == seq || seq <= s.skipThrough.Load() {
			continue
		}
		s.lastSeq = seq
		if s.Filter != nil {
			notify.stageLocked(s, stagedEvent{ev: ev, t: t, op: h.op, count: count, forced: forced})
			continue
		}
		if s.offer(ev, h.op) {
			queued++
			notify.add(s, h.op)
		} else {
			h.dropped++
			t.dropped++
			// A publish is admitted only past full subscribers whose socket
			// is stuck; a delivery that waited out its bound (Redis bus)
			// also drops ones still reading: the hub was overloaded.
			reason := DropSlow
			if s.blockedFor(monoNow()) < stuckAfter {
				reason = DropOverload
			}
			s.Drop(reason)
			h.removeLocked(s, true)
		}
	}
	if queued > 0 {
		t.delivered.Add(uint64(queued))
		t.ctr.delivered.Add(uint64(queued))
	}
	return queued
}

func (h *Hub) removeLocked(s *Subscription, drop bool) {
	if s.removed {
		return
	}
	s.removed = true
	for _, t := range s.topics {
		delete(t.subs, s)
		if len(t.subs) == 0 {
			t.relist() // idle now: it may be forgotten to make room
		}
	}
	h.subscribers--
	for _, c := range s.counters {
		c.subscribers.Add(-1)
	}
	s.unqueue()
	if drop {
		s.closeDone()
		if n := s.loadNotifier(); n != nil {
			n.Dropped()
		}
	}
}

// RegisterWith adds a subscriber with its filter (SubscribeOptions.Filter)
// and returns the position it joins at: it will be offered every event
// delivered after that id. The Redis engine registers first and fetches the
// replay up to that position afterwards.
func (h *Hub) RegisterWith(refs []TopicRef, queueLen int, filter func(*Event) bool) (*Subscription, ID, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, err := h.registerLocked(refs, queueLen, filter)
	if err != nil {
		return nil, ID{}, err
	}
	return s, ID{Epoch: h.epoch, Seq: h.seq}, nil
}

// registerLocked adds a subscriber; filter is set before it can be offered
// anything.
func (h *Hub) registerLocked(refs []TopicRef, queueLen int, filter func(*Event) bool) (*Subscription, error) {
	if h.closed {
		return nil, ErrHubClosed
	}
	if queueLen < 1 {
		queueLen = 1
	}
	s := &Subscription{
		hub:    h,
		Filter: filter,
		max:    queueLen,
	}
	if filter != nil {
		s.order = new(filterOrder)
	}
	h.op++
	if err := h.prepareTopicsLocked([]Publication{{Topics: refs}}, useSubscribe); err != nil {
		return nil, err
	}
	for _, ref := range refs {
		s.topics = append(s.topics, h.topics[ref.Name])
	}
	for _, t := range s.topics {
		t.subs[s] = struct{}{}
	}
	s.counters = countersOf(s.topics)
	for _, c := range s.counters {
		c.subscribers.Add(1)
	}
	s.lastSeq = h.seq
	h.subscribers++
	return s, nil
}
