package hub

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// notifyList collects the subscribers a publish queued events for, so they
// are told after the hub's lock is released: telling may mean writing to a
// socket (Subscription.WriteNow), which must not hold up other publishers.
type notifyList struct {
	subs    []*Subscription
	batches []filterBatch // filtered subscribers' batches (fanout_filter.go)
	staged  []stagedEvent // the batches' events
}

var notifyLists = sync.Pool{New: func() any { return new(notifyList) }}

func takeNotifyList() *notifyList { return notifyLists.Get().(*notifyList) }

func putNotifyList(n *notifyList) {
	if cap(n.subs) > 1<<16 {
		return // a huge fan-out's list is not kept
	}
	if cap(n.batches) > 1<<16 || cap(n.staged) > 1<<16 {
		return
	}
	clear(n.subs)
	n.subs = n.subs[:0]
	clear(n.batches)
	n.batches = n.batches[:0]
	clear(n.staged)
	n.staged = n.staged[:0]
	notifyLists.Put(n)
}

// add collects s once per hub call (op): a batch of events queued for one
// subscriber notifies it once. The hub's lock guards s.notifiedOp.
func (n *notifyList) add(s *Subscription, op uint64) {
	if s.notifiedOp == op {
		return
	}
	s.notifiedOp = op
	n.subs = append(n.subs, s)
}

// dispatch tells the collected subscribers, then filters the batches of
// the filtered ones (which tells those that got events); the hub's lock
// is not held.
func (h *Hub) dispatch(n *notifyList) {
	n.dispatch()
	if len(n.batches) > 0 {
		h.filterBatches(n)
	}
}

// notifyPerWorker is how many subscribers one goroutine tells before the
// work is split: below it, starting a goroutine costs more than it saves.
const notifyPerWorker = 512

// notifyBlock is how many subscribers a worker takes at a time. Workers
// take blocks until none is left, so they all finish together: with fixed
// halves, the half whose core also ran the readers finished last while the
// other core sat idle.
const notifyBlock = 64

// dispatch tells every collected subscriber, split over the available cores
// for a large fan-out: most of that work is write syscalls, which then run
// in parallel. It returns once every subscriber was told.
func (n *notifyList) dispatch() {
	forEach(n.subs, (*Subscription).notify)
}

// forEach calls f for every item of subs (subscribers, or their filter
// batches), split over the available cores when they are many. It returns
// once every call has.
func forEach[T any](subs []T, f func(T)) {
	workers := min(runtime.GOMAXPROCS(0), (len(subs)+notifyPerWorker-1)/notifyPerWorker)
	if workers <= 1 {
		for _, s := range subs {
			f(s)
		}
		return
	}
	var next atomic.Int64
	work := func() {
		for {
			end := int(next.Add(notifyBlock))
			start := end - notifyBlock
			if start >= len(subs) {
				return
			}
			for _, s := range subs[start:min(end, len(subs))] {
				f(s)
			}
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}
