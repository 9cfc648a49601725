package hub

import "sync/atomic"

// A subscriber's channels (Ready, Urgent, Done) are made by the first
// caller that waits on one: a stream served by the event loop is told by
// its WriteNow and OnDone hooks and never waits on a channel, and the three
// were 288 of the 1,700 bytes an idle subscriber cost.

// Ready receives a value when events are waiting.
func (s *Subscription) Ready() <-chan struct{} { return s.signalChan(&s.ready, s.hasPending) }

// Urgent receives a value when the queue has passed half of its bound: a
// writer gathering events to coalesce them should write now.
func (s *Subscription) Urgent() <-chan struct{} { return s.signalChan(&s.urgent, s.halfway.Load) }

// signalChan returns the channel in p, making it on first use. A channel
// made while its condition already holds starts signalled: notify, which
// ran before the channel existed, could not signal it. s.mu orders the two:
// events are queued under it, and the channel is published under it, so a
// notify that found no channel ran after events the check below sees.
func (s *Subscription) signalChan(p *atomicChan, pending func() bool) <-chan struct{} {
	if c := p.Load(); c != nil {
		return *c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := p.Load(); c != nil {
		return *c
	}
	c := make(chan struct{}, 1)
	p.Store(&c)
	if pending() {
		c <- struct{}{}
	}
	return c
}

// hasPending reports whether events wait; s.mu is held.
func (s *Subscription) hasPending() bool { return len(s.pending) > 0 }

// signal sends on the channel in p, if it exists and is not already
// signalled.
func signal(p *atomicChan) {
	if c := p.Load(); c != nil {
		select {
		case *c <- struct{}{}:
		default: // already signalled
		}
	}
}

// Done is closed when the hub has dropped this subscriber.
func (s *Subscription) Done() <-chan struct{} {
	if c := s.done.Load(); c != nil {
		return *c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.done.Load(); c != nil {
		return *c
	}
	c := make(chan struct{})
	if s.dropped.Load() {
		close(c)
	}
	s.done.Store(&c)
	return c
}

// Dropped reports whether the hub has dropped this subscriber (Done is
// closed), without making the channel.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// closeDone marks the subscriber dropped and closes Done if it was made.
func (s *Subscription) closeDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped.Store(true)
	if c := s.done.Load(); c != nil {
		close(*c)
	}
}

type atomicChan = atomic.Pointer[chan struct{}]
