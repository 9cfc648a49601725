package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Subscription is one subscriber's registration. When events wait for it,
// Ready is signalled and Take collects them, in id order. Done is closed
// when the hub drops the subscriber (it fell behind while its peers kept
// up, or the hub closed), after which it must resume by id.
//
// The queue is a slice that exists only while events wait: an idle
// subscriber costs no queue memory however large its bound, and a writer
// that wakes up takes everything pending at once.
//
// The queue is bounded in events and bytes. A queue that is not full takes
// a whole publish (a JSON array larger than the bound included), so it may
// pass its bound by at most one publish. What happens to a publish that
// finds a queue full is the hub's decision (admitLocked): it waits while
// the subscriber's writer can still catch up, and drops the subscriber
// when its socket has stopped taking bytes.
type Subscription struct {
	hub    *Hub
	topics []*topic
	Filter func(*Event) bool // SubscribeOptions.Filter; nil: every event
	max    int               // queue bound in events
	// The channels exist only once someone waits on them (signals.go): a
	// stream the event loop serves never does, and three channels were a
	// sixth of an idle subscriber's memory.
	ready      atomicChan   // capacity 1: "something is pending"
	urgent     atomicChan   // capacity 1: "the queue is past half: stop gathering"
	done       atomicChan   // closed once dropped
	dropped    atomic.Bool  // the hub dropped it: done is closed, or born closed
	lastSeq    uint64       // guarded by hub.mu: dedupes multi-topic fan-out
	notifiedOp uint64       // guarded by hub.mu: the hub call that last collected it for notify
	order      *filterOrder // a filtered subscriber's batch order (fanout_filter.go); nil without a filter
	// skipThrough: live events up to this seq are not queued, the replay
	// covered them (SkipThrough). Written under hub.mu, read under hub.mu
	// (offering) or s.mu (queueing a filter batch).
	skipThrough atomic.Uint64
	removed     bool             // guarded by hub.mu
	counters    []*TopicCounters // of its topics' declarations, each once; set at registration
	dropReason  atomic.Uint32    // the DropReason that closed it, once

	mu           sync.Mutex
	pending      []*Event
	pendingBytes int64
	maxBytes     int64  // queue bound in bytes; 0: events alone bound it
	full         bool   // counted in hub.full
	fullOp       uint64 // the hub call that filled it: that call may finish its batch
	halfway      atomic.Bool
	left         bool // unregistered: nothing more is queued or staged

	// blockedSince is when the subscriber's socket stopped taking bytes
	// (a write is blocked, or a non-blocking write left bytes over), on
	// the monotonic clock of monoNow; 0 while it takes them.
	blockedSince atomic.Int64
	parked       atomic.Bool // waiting for its replay: it takes nothing

	notifier atomic.Value // a Notifier (SetNotifier): an interface holding a pointer costs no allocation
}

// processStart anchors monoNow: time.Since reads the monotonic clock.
var processStart = time.Now()

// monoNow is a monotonic timestamp in nanoseconds, never 0.
func monoNow() int64 { return int64(time.Since(processStart)) + 1 }

// LimitBytes bounds the queue in bytes as well as events (0: no byte
// bound). Call it right after Subscribe.
func (s *Subscription) LimitBytes(n int64) {
	s.mu.Lock()
	s.maxBytes = n
	s.mu.Unlock()
}

// A Notifier is told by the publishing goroutine of a subscriber's events
// and of its drop, instead of (or before) the Ready and Done channels.
type Notifier interface {
	// WriteNow is called after events were queued for the subscriber. It
	// may write them without blocking, and reports true when nothing is
	// left to do; false leaves them to whoever waits on Ready. An idle
	// HTTP/1.1 stream writes this way, which saves a goroutine wake-up
	// per delivery.
	WriteNow() bool
	// Dropped is called once the hub has dropped the subscriber (Done is
	// closed), for a writer that does not wait on Done: an event loop. It
	// is called under the hub's lock and must not block.
	Dropped()
}

// SetNotifier installs n; call it once, right after subscribing.
func (s *Subscription) SetNotifier(n Notifier) { s.notifier.Store(n) }

func (s *Subscription) loadNotifier() Notifier {
	n, _ := s.notifier.Load().(Notifier)
	return n
}

// Blocked records that the subscriber's socket has stopped taking bytes
// (from now, unless it already had): the hub drops a full subscriber in
// that state instead of making publishers wait for it.
func (s *Subscription) Blocked() {
	s.blockedSince.CompareAndSwap(0, monoNow())
}

// Unblocked records that the socket took everything written to it.
func (s *Subscription) Unblocked() { s.blockedSince.Store(0) }

// Park marks a subscriber that cannot take events for now (its stream
// waits for a replay that comes later, Replay.Later): publishers do not
// wait for it, and a full queue drops it, as one whose socket is dead.
func (s *Subscription) Park(parked bool) { s.parked.Store(parked) }

// blockedFor is how long the socket has not been taking bytes, as of now.
func (s *Subscription) blockedFor(now int64) time.Duration {
	if s.parked.Load() {
		return stuckAfter
	}
	since := s.blockedSince.Load()
	if since == 0 || since > now {
		return 0
	}
	return time.Duration(now - since)
}

// Take appends the waiting events to dst and returns it.
func (s *Subscription) Take(dst []*Event) []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(dst)
}

func (s *Subscription) takeLocked(dst []*Event) []*Event {
	dst = append(dst, s.pending...)
	clear(s.pending)
	// A busy stream keeps an array of up to 256 pointers (2 KiB):
	// regrowing it every coalesce window was the largest allocation of a
	// publish flood. One that took less than a quarter of it is quietening
	// down and lets it go, and a larger array (a burst) is never kept.
	if c := cap(s.pending); c > 256 || (c > 64 && len(s.pending)*4 < c) {
		s.pending = nil
	} else {
		s.pending = s.pending[:0]
	}
	s.pendingBytes = 0
	s.halfway.Store(false)
	s.updateFullLocked()
	return dst
}

// TakeAtMost appends up to n of the waiting events, oldest first, to dst
// and returns it: a writer that sends a bounded batch per write (a
// writev's vector) takes no more than it can send.
func (s *Subscription) TakeAtMost(dst []*Event, n int) []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) <= n {
		return s.takeLocked(dst)
	}
	dst = append(dst, s.pending[:n]...)
	for _, ev := range s.pending[:n] {
		s.pendingBytes -= int64(len(ev.Wire))
	}
	rest := copy(s.pending, s.pending[n:])
	clear(s.pending[rest:])
	s.pending = s.pending[:rest]
	if len(s.pending)*2 < s.max && (s.maxBytes == 0 || s.pendingBytes*2 < s.maxBytes) {
		s.halfway.Store(false)
	}
	s.updateFullLocked()
	return dst
}

// PastHalf reports whether the queue has passed half of its bound since it
// was last taken: a writer gathering events should write now.
func (s *Subscription) PastHalf() bool { return s.halfway.Load() }

// Queued is how many events wait.
func (s *Subscription) Queued() int {
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

// Full reports whether the queue is at its bound.
func (s *Subscription) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// offer queues ev for the hub call op, reporting false when the queue was
// already full before that call. It never blocks: the hub calls it under
// its lock. The subscriber is told afterwards, by notify, once the hub's
// lock is released.
func (s *Subscription) offer(ev *Event, op uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full && s.fullOp != op {
		return false
	}
	s.appendLocked(ev, op)
	return true
}

// appendLocked queues ev for the hub call op, marking the queue full once
// it reaches its bound.
func (s *Subscription) appendLocked(ev *Event, op uint64) {
	s.pending = append(s.pending, ev)
	s.pendingBytes += int64(len(ev.Wire))
	if !s.halfway.Load() && (len(s.pending)*2 >= s.max || (s.maxBytes > 0 && s.pendingBytes*2 >= s.maxBytes)) {
		s.halfway.Store(true)
	}
	if !s.full && s.atBoundLocked() {
		s.full, s.fullOp = true, op
		s.hub.full.Add(1)
	}
}

func (s *Subscription) atBoundLocked() bool {
	return len(s.pending) >= s.max || (s.maxBytes > 0 && s.pendingBytes >= s.maxBytes)
}

// updateFullLocked clears the full mark once the queue has room again and
// wakes publishers waiting for room.
func (s *Subscription) updateFullLocked() {
	if s.full && !s.atBoundLocked() {
		s.clearFullLocked()
	}
}

// clearFullLocked stops counting the subscriber as full and wakes
// publishers waiting for room.
func (s *Subscription) clearFullLocked() {
	s.full = false
	s.hub.full.Add(-1)
	s.hub.roomMade()
}

// notify tells the subscriber that events wait: its Notifier writes
// them at once if it can (Notifier), else its Ready channel is signalled, and its
// Urgent channel too when the queue is past half.
func (s *Subscription) notify() {
	if n := s.loadNotifier(); n != nil && n.WriteNow() {
		return
	}
	signal(&s.ready)
	if s.halfway.Load() {
		signal(&s.urgent)
	}
}

// Close unregisters the subscriber; it is safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	s.hub.removeLocked(s, false)
	s.hub.mu.Unlock()
}

// unqueue forgets the subscriber's queue when it leaves the hub, so it no
// longer counts as full.
func (s *Subscription) unqueue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.left = true
	if s.order != nil {
		s.order.early = nil
	}
	if s.full {
		s.clearFullLocked()
	}
}
