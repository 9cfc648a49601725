package hub

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// Filtered subscribers (SubscribeOptions.Filter) are not judged under the
// hub's lock. A filter may be costly (an anonymous subscriber may send
// dozens of URL patterns), and the hub's lock is what every publish of
// every route of the hub waits for: judged under it, one hostile
// subscriber made unrelated publishes wait for its patterns.
//
// So under the lock an event is only staged for a filtered subscriber: a
// pointer appended to the hub call's own list (notifyList.staged), taking
// no other lock, in a batch numbered by the subscriber's next ticket
// (stageLocked). Once the lock is released the call filters its own
// batches (filterBatches) and queues what each filter accepts. A publish
// whose topics have no filtered subscriber never waits for any filter:
// the lock is held only for staging.
//
// The guarantees hold as they did when filtering ran under the lock:
//   - order: tickets follow the hub lock's order, and a subscriber queues
//     its batches in ticket order. A call whose batch is filtered before
//     an older one is queued leaves it with the subscriber (early), and
//     the call queueing the older one queues it after its own. Nobody
//     waits for another call's filter; once every call has returned,
//     every batch is queued.
//   - no gap, no duplicate: staging replaces queueing where it was, under
//     the lock that orders registrations and replay snapshots.
//   - a refused event never enters the queue: it neither counts against
//     the queue's bound nor can get the subscriber dropped as slow.
//   - counts: a call counts what its filters accept (the publication's
//     delivered count and the topic's) before it returns, queued by
//     itself or, soon after, by an older call.
//   - back-pressure: the publish was admitted under the lock as before
//     (overload.go). An accepted event finding the queue full from an
//     earlier call drops the subscriber only when its socket is stuck (or
//     the delivery was forced, Redis): a subscriber that reads is not
//     dropped because two publishes were admitted before either filtered
//     (its queue may pass its bound by what was in flight).
//
// Per filtered subscriber and update this takes the subscriber's lock once
// (to queue), as an unfiltered delivery does. Staging through that lock
// and a handshake between filter passes took it three times, and its
// cache line moving between the publishers' cores cost as much as the
// filter.

// stagedEvent is an event waiting for a filtered subscriber's filter.
type stagedEvent struct {
	ev     *Event
	t      *topic
	batch  int           // its batch in notifyList.batches
	op     uint64        // the hub call that staged it (Subscription.offer)
	count  *atomic.Int64 // the publication's delivered count; nil: none kept
	forced bool          // delivered past a full queue (Redis, deliverWait)
}

// filterBatch is what one hub call staged for one filtered subscriber:
// notifyList.staged[lo:hi] once sorted, to be queued in ticket order.
type filterBatch struct {
	s      *Subscription
	ticket uint64
	lo, hi int
}

// filterOrder is how a filtered subscriber's batches keep their order:
// each batch takes a ticket under the hub's lock, and batches are queued in
// ticket order. It exists only for filtered subscribers.
type filterOrder struct {
	batchOp uint64 // guarded by hub.mu: the hub call of its newest batch
	batch   int    // guarded by hub.mu: that batch's index in the call's notifyList
	tickets uint64 // guarded by hub.mu: batches handed out

	// Guarded by the subscriber's mu: queuedTicket is the newest queued,
	// early holds those filtered before an older one was queued, by ticket.
	queuedTicket uint64
	early        []earlyBatch
}

// earlyBatch is a batch filtered before an older one of its subscriber was
// queued: its accepted events, waiting with the subscriber.
type earlyBatch struct {
	ticket uint64
	evs    []stagedEvent
}

// stageLocked stages st for s's filter: in s's batch of hub call op, the
// first of its events opening it with s's next ticket. The hub's lock
// guards s.order's batchOp, batch and tickets.
func (n *notifyList) stageLocked(s *Subscription, st stagedEvent) {
	if s.order.batchOp != st.op {
		s.order.batchOp = st.op
		s.order.tickets++
		s.order.batch = len(n.batches)
		n.batches = append(n.batches, filterBatch{s: s, ticket: s.order.tickets})
	}
	st.batch = s.order.batch
	n.staged = append(n.staged, st)
}

// bound sets each batch's place in n.staged, sorting it by batch first
// when a batch has several events (several events in one hub call), which
// interleaves them. The hub's lock is not held.
func (n *notifyList) bound() {
	if len(n.staged) == len(n.batches) {
		// One event each: staged in batch order.
		for i := range n.batches {
			n.batches[i].lo, n.batches[i].hi = i, i+1
		}
		return
	}
	slices.SortStableFunc(n.staged, func(a, b stagedEvent) int { return cmp.Compare(a.batch, b.batch) })
	lo := 0
	for i := range n.batches {
		hi := lo
		for hi < len(n.staged) && n.staged[hi].batch == i {
			hi++
		}
		n.batches[i].lo, n.batches[i].hi = lo, hi
		lo = hi
	}
}

// stagedDrop is a subscriber a filter pass found full and must drop.
type stagedDrop struct {
	s      *Subscription
	t      *topic
	reason DropReason
}

// filterBatches filters the batches n collected, outside the hub's lock,
// queues what the filters accept and tells the subscribers that got
// events; subscribers that must be dropped are dropped afterwards, under
// the lock. Large fan-outs are split over the cores, as notifying is.
func (h *Hub) filterBatches(n *notifyList) {
	n.bound()
	var (
		mu    sync.Mutex
		drops []stagedDrop
	)
	run := func(b filterBatch, tally *deliveryTally) {
		queued, drop := b.s.filterBatch(b.ticket, n.staged[b.lo:b.hi], tally)
		if drop.reason != 0 {
			mu.Lock()
			drops = append(drops, drop)
			mu.Unlock()
		}
		if queued > 0 {
			b.s.notify()
		}
	}
	if len(n.batches) <= notifyPerWorker {
		// One goroutine (forEach would not split so few): a topic's
		// delivery counters are added once for all of them, as
		// queueLocked adds them once per event: per delivery, they were
		// two atomics on lines every publishing core writes, a fifth of
		// the filter pass in BenchmarkFilteredPublish.
		var tally deliveryTally
		for _, b := range n.batches {
			run(b, &tally)
		}
		tally.flush()
	} else {
		forEach(n.batches, func(b filterBatch) {
			var tally deliveryTally
			run(b, &tally)
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

// filterBatch filters evs, the batch with ticket ticket, holding no lock,
// counts what it accepts in tally, and queues it in ticket order. It
// reports how many events it queued (its own and early batches it
// released) and, when the queue was found full with the socket stuck, the
// drop to make.
func (s *Subscription) filterBatch(ticket uint64, evs []stagedEvent, tally *deliveryTally) (queued int, drop stagedDrop) {
	filtered := false
	defer func() {
		if !filtered {
			// The filter panicked: the batch is given up, so that later
			// ones are not held behind it for good.
			s.mu.Lock()
			q, _ := s.queueInTurnLocked(ticket, nil)
			s.mu.Unlock()
			if q > 0 {
				s.notify()
			}
		}
	}()
	accepted := 0
	for i := range evs {
		st := &evs[i]
		if !s.Filter(filterHook(st.ev)) {
			st.ev = nil // refused: forgotten
			continue
		}
		accepted++
		tally.add(st.t)
		if st.count != nil {
			tally.addOwn(st.count)
		}
	}
	filtered = true
	if accepted < len(evs) {
		evs = slices.DeleteFunc(evs, func(st stagedEvent) bool { return st.ev == nil })
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queueInTurnLocked(ticket, evs)
}

// queueInTurnLocked queues evs, the accepted events of batch ticket, if
// every older batch is queued, and then the early batches that follow it;
// otherwise it leaves a copy of them with the subscriber for the call
// queueing the older batch. s.mu is held.
func (s *Subscription) queueInTurnLocked(ticket uint64, evs []stagedEvent) (queued int, drop stagedDrop) {
	if s.left {
		return 0, stagedDrop{}
	}
	if ticket != s.order.queuedTicket+1 {
		i, _ := slices.BinarySearchFunc(s.order.early, ticket, func(e earlyBatch, t uint64) int { return cmp.Compare(e.ticket, t) })
		s.order.early = slices.Insert(s.order.early, i, earlyBatch{ticket: ticket, evs: slices.Clone(evs)})
		return 0, stagedDrop{}
	}
	queued, drop = s.queueStagedLocked(evs)
	s.order.queuedTicket = ticket
	for len(s.order.early) > 0 && s.order.early[0].ticket == s.order.queuedTicket+1 {
		if drop.reason == 0 {
			var q int
			q, drop = s.queueStagedLocked(s.order.early[0].evs)
			queued += q
		}
		s.order.queuedTicket++
		s.order.early[0] = earlyBatch{}
		s.order.early = s.order.early[1:]
	}
	if len(s.order.early) == 0 {
		s.order.early = nil
	}
	return queued, drop
}

// queueStagedLocked queues accepted events, stopping at the first that
// must drop the subscriber. s.mu is held.
func (s *Subscription) queueStagedLocked(evs []stagedEvent) (queued int, drop stagedDrop) {
	skip := s.skipThrough.Load()
	for i := range evs {
		st := &evs[i]
		if st.ev.ID.Seq <= skip {
			continue // its replay covered it (SkipThrough)
		}
		if s.full && s.fullOp != st.op {
			// Full from an earlier call. Stuck, or a forced delivery:
			// dropped, as queueLocked would. Reading: it takes the event
			// past its bound (see above).
			if blocked := s.blockedFor(monoNow()); blocked >= stuckAfter || st.forced {
				drop = stagedDrop{s: s, t: st.t, reason: DropSlow}
				if blocked < stuckAfter {
					drop.reason = DropOverload
				}
				return queued, drop
			}
		}
		s.appendLocked(st.ev, st.op)
		queued++
	}
	return queued, stagedDrop{}
}
