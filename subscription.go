package caddysse

import (
	"sync"
	"sync/atomic"
)

// Subscription is one subscriber's registration. When events wait for it,
// Ready is signalled and Take collects them, in id order. Done is closed
// when the hub drops the subscriber (its queue overflowed, or the hub
// closed), after which it must resume by id.
//
// The queue is a slice that exists only while events wait: an idle
// subscriber costs no queue memory however large its bound, and a writer
// that wakes up takes everything pending at once.
type Subscription struct {
	hub        *Hub
	topics     []*topic
	max        int           // queue bound
	ready      chan struct{} // capacity 1: "something is pending"
	done       chan struct{}
	lastSeq    uint64 // guarded by hub.mu: dedupes multi-topic fan-out
	floor      uint64 // guarded by hub.mu: live events up to this seq were replayed (Redis engine)
	notifiedOp uint64 // guarded by hub.mu: the hub call that last collected it for notify
	removed    bool   // guarded by hub.mu

	mu      sync.Mutex
	pending []*Event

	writeNow atomic.Pointer[func() bool] // see SetWriteNow
}

// SetWriteNow installs a hook that the publishing goroutine calls after
// queueing events for this subscriber. It may write them without blocking
// and report true when nothing is left to do; false leaves them to whoever
// waits on Ready. An idle HTTP/1.1 stream writes this way, which saves a
// goroutine wake-up per delivery.
func (s *Subscription) SetWriteNow(f func() bool) { s.writeNow.Store(&f) }

// Ready receives a value when events are waiting.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take appends the waiting events to dst and returns it.
func (s *Subscription) Take(dst []*Event) []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(dst)
}

func (s *Subscription) takeLocked(dst []*Event) []*Event {
	dst = append(dst, s.pending...)
	clear(s.pending)
	if cap(s.pending) > 64 {
		s.pending = nil // a burst's backing array is not kept for an idle stream
	} else {
		s.pending = s.pending[:0]
	}
	return dst
}

// queued is how many events wait.
func (s *Subscription) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// TakeUpTo is Take when at most limit events wait; with more, it takes
// nothing and reports false.
func (s *Subscription) TakeUpTo(dst []*Event, limit int) ([]*Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > limit {
		return dst, false
	}
	return s.takeLocked(dst), true
}

// offer queues ev, reporting false when the queue is full. It never blocks:
// the hub calls it under its lock. The subscriber is told afterwards, by
// notify, once the hub's lock is released.
func (s *Subscription) offer(ev *Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= s.max {
		return false
	}
	s.pending = append(s.pending, ev)
	return true
}

// notify tells the subscriber that events wait: its WriteNow hook writes
// them at once if it can, else its Ready channel is signalled.
func (s *Subscription) notify() {
	if f := s.writeNow.Load(); f != nil && (*f)() {
		return
	}
	select {
	case s.ready <- struct{}{}:
	default: // already signalled
	}
}

// Done is closed when the hub has dropped this subscriber.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Close unregisters the subscriber; it is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	s.hub.removeLocked(s, false)
	s.hub.mu.Unlock()
}
