package hub

import (
	"sync"
	"sync/atomic"
)

// Filtered subscribers (SubscribeOptions.Filter) are not judged under the
// hub's lock. A filter may be costly (an anonymous subscriber may send
// dozens of URL patterns), and the hub's lock is what
// every publish of every route of the hub waits for: judged under it, one
// hostile subscriber made unrelated publishes wait for its patterns.
//
// So under the lock an event is only staged for a filtered subscriber (a
// pointer appended, in id order, as to any queue), and the publishing
// goroutine filters once the lock is released (filterStaged): accepted
// events go to the subscriber's queue, refused ones are forgotten. A
// publish whose topics have no filtered subscriber never waits for any
// filter: the lock is held only for staging.
//
// The guarantees hold as they did when filtering ran under the lock:
//   - order: events are staged in id order under the hub's lock, and one
//     filter pass at a time takes a subscriber's staged events, in order,
//     and queues the accepted ones before the next pass starts (filterMu).
//     A publisher whose event another pass took waits for that pass, so
//     its event is queued (or refused) when its publish returns.
//   - no gap, no duplicate: staging replaces queueing where it was, under
//     the lock that orders registrations and replay snapshots.
//   - a refused event never enters the queue: it neither counts against
//     the queue's bound nor can get the subscriber dropped as slow.
//   - back-pressure: the publish was admitted under the lock as before
//     (overload.go). An accepted event finding the queue full from an
//     earlier call drops the subscriber only when its socket is stuck (or
//     the delivery was forced, Redis): a subscriber that reads is not
//     dropped because two publishes were admitted before either filtered
//     (its queue may pass its bound by what was in flight).

// stagedEvent is an event waiting for a filtered subscriber's filter.
type stagedEvent struct {
	ev     *Event
	t      *topic
	op     uint64        // the hub call that staged it (Subscription.offer)
	count  *atomic.Int64 // the publication's delivered count; nil: none kept
	forced bool          // delivered past a full queue (Redis, deliverWait)
}

// stage appends ev for the filter pass; the hub's lock is held.
func (s *Subscription) stage(st stagedEvent) {
	s.mu.Lock()
	if !s.left {
		s.staged = append(s.staged, st)
	}
	s.mu.Unlock()
}

// stagedDrop is a subscriber a filter pass found full and must drop.
type stagedDrop struct {
	s      *Subscription
	t      *topic
	reason DropReason
}

// filterStaged runs the filter pass of each subscriber in subs, outside
// the hub's lock: its accepted staged events are queued and it is told;
// subscribers that must be dropped are dropped afterwards, under the lock.
// Large fan-outs are split over the cores, as notifying is.
func (h *Hub) filterStaged(subs []*Subscription) {
	var (
		mu    sync.Mutex
		drops []stagedDrop
	)
	forEachSub(subs, func(s *Subscription) {
		queued, drop := s.filterPass()
		if drop.reason != 0 {
			mu.Lock()
			drops = append(drops, drop)
			mu.Unlock()
		}
		if queued > 0 {
			s.notify()
		}
	})
	if len(drops) == 0 {
		return
	}
	h.mu.Lock()
	for _, d := range drops {
		if d.s.removed {
			continue
		}
		h.dropped++
		d.t.dropped++
		d.s.Drop(d.reason)
		h.removeLocked(d.s, true)
	}
	h.mu.Unlock()
}

// filterPass filters what is staged for s and queues what its filter
// accepts, reporting how many it queued and, when the queue was found full
// with the socket stuck, the drop to make. The filter runs holding neither
// the hub's lock nor s.mu (which staging takes under the hub's lock).
func (s *Subscription) filterPass() (int, stagedDrop) {
	s.filterMu.Lock()
	defer s.filterMu.Unlock()
	s.mu.Lock()
	batch := s.staged
	s.staged, s.spare = s.spare[:0], nil
	s.mu.Unlock()
	if len(batch) == 0 {
		s.mu.Lock()
		s.spare = batch
		s.mu.Unlock()
		return 0, stagedDrop{}
	}
	kept := batch[:0]
	for _, st := range batch {
		if s.Filter(filterHook(st.ev)) {
			kept = append(kept, st)
		}
	}
	queued := 0
	var drop stagedDrop
	s.mu.Lock()
	for _, st := range kept {
		if s.left {
			break
		}
		if s.full && s.fullOp != st.op {
			// Full from an earlier call. Stuck, or a forced delivery:
			// dropped, as queueLocked would. Reading: it takes the event
			// past its bound (see above).
			now := monoNow()
			if blocked := s.blockedFor(now); blocked >= stuckAfter || st.forced {
				drop = stagedDrop{s: s, t: st.t, reason: DropSlow}
				if blocked < stuckAfter {
					drop.reason = DropOverload
				}
				break
			}
		}
		s.appendLocked(st.ev, st.op)
		queued++
		st.t.delivered.Add(1)
		st.t.ctr.delivered.Add(1)
		if st.count != nil {
			st.count.Add(1)
		}
	}
	clear(batch)
	s.spare = batch[:0]
	s.mu.Unlock()
	return queued, drop
}
