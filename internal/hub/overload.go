package hub

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
	"time"
)

// Overload is the hub's problem, not the subscribers'
// (docs/publishing.md, overload and slow subscribers). A publish that finds a subscriber's queue full asks why:
//
//   - The subscriber's socket still takes bytes: its writer simply has not
//     caught up, because publishers outpace what the cores can write.
//     Dropping it would punish a client that is reading, so the publish
//     waits for room instead, bounded by its context (the sse_publish
//     overload_wait), and fails with ErrOverloaded past it.
//   - Its socket has taken nothing for stuckAfter (a write is blocked, or a
//     non-blocking write left bytes over): the client stopped reading, or
//     reads slower than events arrive. It is dropped alone, resumes by id,
//     and the publish goes on. A publisher waits at most stuckAfter for a
//     peer that has just stopped reading.
//
// The check costs one atomic load while no queue is full, which is almost
// always; only then are the publish's subscribers looked at.
const (
	stuckAfter = 100 * time.Millisecond
	// A waiting publisher looks again at least this often: a subscriber's
	// blocked time grows without any event that would wake the publisher.
	roomPoll = 20 * time.Millisecond
	// deliverWait bounds how long the Redis engine's bus reader waits for
	// room before it delivers anyway, dropping the subscribers still full:
	// it cannot refuse an event that is already published.
	deliverWait = 5 * time.Second
)

// roomSignal wakes publishers waiting for room in subscribers' queues. The
// channel is closed, and replaced on the next wait, whenever a full queue
// empties or a full subscriber leaves.
type roomSignal struct {
	waiters atomic.Int32
	mu      sync.Mutex
	ch      chan struct{}
}

// roomMade wakes the waiting publishers, if any.
func (h *Hub) roomMade() {
	if h.room.waiters.Load() == 0 {
		return
	}
	h.room.mu.Lock()
	if h.room.ch != nil {
		close(h.room.ch)
		h.room.ch = nil
	}
	h.room.mu.Unlock()
}

// roomChan is closed when room is next made.
func (h *Hub) roomChan() <-chan struct{} {
	h.room.mu.Lock()
	defer h.room.mu.Unlock()
	if h.room.ch == nil {
		h.room.ch = make(chan struct{})
	}
	return h.room.ch
}

// admitLocked reports whether pubs may be queued now: every full
// subscriber of their topics is one the queueing will drop (see above).
func (h *Hub) admitLocked(pubs []Publication) bool {
	return h.admitTopicsLocked(func(yield func(string) bool) {
		for _, p := range pubs {
			for _, ref := range p.Topics {
				if !yield(ref.Name) {
					return
				}
			}
		}
	})
}

// admitTopicsLocked is admitLocked for the named topics (a topic that does
// not exist has no one to wait for).
func (h *Hub) admitTopicsLocked(names iter.Seq[string]) bool {
	if h.full.Load() == 0 {
		return true
	}
	now := monoNow()
	for name := range names {
		if t := h.topics[name]; t != nil && !t.admits(now) {
			return false
		}
	}
	return true
}

// admits reports whether an event may be queued for t's subscribers now:
// none of them is full while its socket still takes bytes.
func (t *topic) admits(now int64) bool {
	for s := range t.subs {
		if s.Full() && s.blockedFor(now) < stuckAfter {
			return false // its writer will catch up: wait for it
		}
	}
	return true
}

// roomWaiter is one publisher's wait for room, across its attempts. It
// starts no timer and allocates nothing unless it actually waits: almost
// every publish finds room at once.
type roomWaiter struct {
	h        *Hub
	armed    bool
	room     <-chan struct{}
	poll     *time.Timer
	done     <-chan struct{} // the caller's context
	limit    time.Duration   // the longest wait; 0: as long as the context allows
	deadline time.Time       // when waiting began + limit
}

func newRoomWaiter(h *Hub, ctx context.Context, limit time.Duration) roomWaiter {
	return roomWaiter{h: h, done: ctx.Done(), limit: limit}
}

// arm takes the signal to wait on before the next look, so that room made
// between that look and the wait is not missed.
func (w *roomWaiter) arm() {
	if w.armed {
		w.room = w.h.roomChan()
	}
}

// wait waits for room after a refused look. The first refusal only arms
// the signal and looks again at once. It reports false once the wait's
// limit has passed or the context is done.
func (w *roomWaiter) wait() bool {
	if !w.armed {
		w.armed = true
		w.h.room.waiters.Add(1)
		if w.limit > 0 {
			w.deadline = time.Now().Add(w.limit)
		}
		return true
	}
	next := roomPoll
	if w.limit > 0 {
		left := time.Until(w.deadline)
		if left <= 0 {
			return false
		}
		next = min(next, left)
	}
	if w.poll == nil {
		w.poll = time.NewTimer(next)
	} else {
		w.poll.Reset(next)
	}
	select {
	case <-w.room:
	case <-w.poll.C:
	case <-w.done:
		return false
	}
	return true
}

// release ends the wait.
func (w *roomWaiter) release() {
	if w.armed {
		w.h.room.waiters.Add(-1)
	}
	if w.poll != nil {
		w.poll.Stop()
	}
}
