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
//     and queues the accepted ones before the next pass starts (passing).
//     A publisher whose event another pass took waits for that pass (or
//     finds it finished: filteredOp), so its event is queued (or refused)
//     and counted when its publish returns.
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
// Large fan-outs are split over the cores, as notifying is. op is the hub
// call that staged the events (the newest, if several did).
//
// A subscriber whose events up to op a finished pass has already taken is
// skipped without taking its locks: concurrent publishers to one topic
// walk the same subscribers, and the first to reach one takes every event
// staged for it; the others only had to wait for that pass, and once it
// has finished (filteredOp, stored after it counted) there is nothing to
// wait for. Concurrent publishers (8 in bench/compare.sh's publish
// scenario) would otherwise each take two locks per subscriber for nothing,
// on cache lines the other cores hold.
func (h *Hub) filterStaged(subs []*Subscription, op uint64) {
	var (
		mu    sync.Mutex
		drops []stagedDrop
	)
	pass := func(s *Subscription, tally *deliveryTally) {
		queued, drop := s.filterPass(op, tally)
		if drop.reason != 0 {
			mu.Lock()
			drops = append(drops, drop)
			mu.Unlock()
		}
		if queued > 0 {
			s.notify()
		}
	}
	if len(subs) <= notifyPerWorker {
		// One goroutine (forEachSub would not split so few): a topic's
		// delivery counters are added once for all of them, as
		// queueLocked adds them once per event: per delivery, they were
		// two atomics on lines every publishing core writes, a fifth of
		// the filter pass in BenchmarkFilteredPublish.
		var tally deliveryTally
		for _, s := range subs {
			pass(s, &tally)
		}
		tally.flush()
	} else {
		forEachSub(subs, func(s *Subscription) {
			var tally deliveryTally
			pass(s, &tally)
			tally.flush()
		})
	}
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

// deliveryTally gathers deliveries to add them to their counters at once:
// a topic's (statistics), and the delivered count of a publication of the
// hub call running the passes (only that call reads it, once they are
// all done). Both are added before the publish returns.
type deliveryTally struct {
	t     *topic
	n     uint64
	count *atomic.Int64
	own   int64
}

func (d *deliveryTally) add(t *topic) {
	if t != d.t {
		d.flushTopic()
		d.t = t
	}
	d.n++
}

func (d *deliveryTally) addOwn(count *atomic.Int64) {
	if count != d.count {
		d.flushOwn()
		d.count = count
	}
	d.own++
}

func (d *deliveryTally) flushTopic() {
	if d.n > 0 {
		d.t.delivered.Add(d.n)
		d.t.ctr.delivered.Add(d.n)
		d.n = 0
	}
}

func (d *deliveryTally) flushOwn() {
	if d.own > 0 {
		d.count.Add(d.own)
		d.own = 0
	}
}

func (d *deliveryTally) flush() {
	d.flushTopic()
	d.flushOwn()
}

// filterPass filters what is staged for s and queues what its filter
// accepts, reporting how many it queued and, when the queue was found full
// with the socket stuck, the drop to make; the deliveries are counted in
// tally, those of other calls' publications at once. op is the hub call
// running the pass (filterStaged). The filter runs holding neither the
// hub's lock nor s.mu (which staging takes under the hub's lock).
func (s *Subscription) filterPass(op uint64, tally *deliveryTally) (int, stagedDrop) {
	if !s.lockForPass(op) {
		return 0, stagedDrop{} // a finished pass took and counted this call's events
	}
	batch := s.staged
	if len(batch) == 0 {
		// An earlier pass took it all, and has queued it (it has
		// ended): nothing to swap.
		s.mu.Unlock()
		return 0, stagedDrop{}
	}
	s.staged, s.spare = s.spare[:0], nil
	s.passing = true
	s.mu.Unlock()
	ended := false
	defer func() {
		if !ended { // the filter panicked: later passes must not wait for this one
			s.mu.Lock()
			s.endPassLocked()
			s.mu.Unlock()
		}
	}()
	accepted := 0
	for i := range batch {
		if s.Filter(filterHook(batch[i].ev)) {
			accepted++
		} else {
			batch[i].ev = nil // refused: forgotten
		}
	}
	queued := 0
	var drop stagedDrop
	// Other calls' publications' delivered counts, added before the pass
	// ends: a publisher whose event this pass took waits for its end (or
	// finds filteredOp past its call), and then reads its count whole.
	// Consecutive events of one publication are added at once.
	var (
		count   *atomic.Int64
		counted int64
	)
	s.mu.Lock()
	for i := 0; i < len(batch) && accepted > 0; i++ {
		st := &batch[i]
		if st.ev == nil {
			continue
		}
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
		tally.add(st.t)
		if st.count == nil {
			continue
		}
		if st.op == op {
			tally.addOwn(st.count)
			continue
		}
		if st.count != count {
			if count != nil {
				count.Add(counted)
			}
			count, counted = st.count, 0
		}
		counted++
	}
	// Staged in hub-call order: the first and last are the oldest and
	// newest calls taken. Only another call can skip this subscriber for
	// this pass: when it took this call's events alone, nothing is stored.
	oldest, newest := batch[0].op, batch[len(batch)-1].op
	clear(batch)
	s.spare = batch[:0]
	if count != nil {
		count.Add(counted)
	}
	// After the counts: a publisher that skips this subscriber for it
	// (lockForPass) reads its count whole.
	if oldest != op || newest != op {
		s.filteredOp.Store(newest)
	}
	s.endPassLocked()
	ended = true
	s.mu.Unlock()
	return queued, drop
}

// One filter pass of a subscriber runs at a time: s.passing, set under
// s.mu by the pass that takes the staged events and cleared under s.mu
// once it has queued and counted them. A flag under the lock a pass takes
// anyway, rather than a mutex of its own: two atomic operations fewer per
// filtered subscriber per update, which on this machine cost about as
// much as the filter itself. Passes rarely overlap on one subscriber
// (concurrent publishers to its topics); one that finds another under way
// waits on passDone, made by the first waiter and closed when the pass
// ends.

// lockForPass returns true holding s.mu with no filter pass of s under
// way, waiting for one to end; it returns false, without s.mu, once a
// finished pass has taken hub call op's events (op 0: never).
func (s *Subscription) lockForPass(op uint64) bool {
	for {
		if op != 0 && s.filteredOp.Load() >= op {
			return false
		}
		s.mu.Lock()
		if !s.passing {
			return true
		}
		if s.passDone == nil {
			s.passDone = make(chan struct{})
		}
		done := s.passDone
		s.mu.Unlock()
		<-done
	}
}

// endPassLocked ends a pass and wakes those waiting for it; s.mu is held.
func (s *Subscription) endPassLocked() {
	s.passing = false
	if s.passDone != nil {
		close(s.passDone)
		s.passDone = nil
	}
}

// holdPasses keeps filter passes of s off, as a pass under way would,
// until releasePasses: the Redis engine's skipThrough edits the staged
// events and the queue meanwhile.
func (s *Subscription) holdPasses() {
	s.lockForPass(0)
	s.passing = true
	s.mu.Unlock()
}

func (s *Subscription) releasePasses() {
	s.mu.Lock()
	s.endPassLocked()
	s.mu.Unlock()
}
