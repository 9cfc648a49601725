package hub

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Counters: what the hub has done, kept per declared topic so that metrics
// stay bounded however many concrete topics a pattern spawns. They live in
// the hub, which outlives configurations, so a reload neither resets them
// nor registers them twice: the metrics collector of each configuration
// (the root package's metrics.go) only reads them, at scrape time. Nothing here knows about
// Prometheus or Caddy.
//
// The hot path pays one uncontended atomic add per topic of each published
// event (published, delivered); nothing per delivery.

// DropReason says why a subscriber's stream was closed by the server.
type DropReason uint32

// Why subscribers are dropped (docs/operations.md, "Metrics").
const (
	// DropSlow: its queue was full while its socket took nothing, or its
	// stream made no progress for write_timeout.
	DropSlow DropReason = iota + 1
	// DropOverload: the hub could not deliver in time: the Redis bus
	// reader waited for room past its bound, or this instance fell
	// further behind than the bus backlog.
	DropOverload
	// DropProtocol: the client sent bytes up its stream.
	DropProtocol
	// DropShutdown: its configuration stopped (reload or exit).
	DropShutdown
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"", "slow", "overload", "protocol", "shutdown"}

func (r DropReason) String() string {
	if r == 0 || r >= numDropReasons {
		return "unknown"
	}
	return dropReasonNames[r]
}

// DropReasons lists the reasons, in order, for iterating over snapshots.
func DropReasons() []DropReason {
	return []DropReason{DropSlow, DropOverload, DropProtocol, DropShutdown}
}

// Reset reasons, indexes of TopicSnapshot.Resets.
const (
	resetEvicted = iota
	resetUnknown
	numResetReasons
)

// ResetReasons names the reasons of TopicSnapshot.Resets, by index.
var ResetReasons = [numResetReasons]string{"evicted", "unknown"}

// TopicCounters count what happened on one declared topic (a literal name,
// or a pattern for all of its concrete topics).
type TopicCounters struct {
	subscribers atomic.Int64
	published   atomic.Uint64
	delivered   atomic.Uint64
	replayed    atomic.Uint64
	resets      [numResetReasons]atomic.Uint64
	dropped     [numDropReasons]atomic.Uint64
}

// AddPublished counts n events published to the topic by a shared engine,
// which assigns ids itself rather than through the hub's Publish.
func (c *TopicCounters) AddPublished(n uint64) { c.published.Add(n) }

// TopicSnapshot is a copy of one declared topic's counters.
type TopicSnapshot struct {
	Subscribers int64
	Published   uint64
	Delivered   uint64
	Replayed    uint64
	Resets      [numResetReasons]uint64 // by ResetReasons
	Dropped     [numDropReasons]uint64  // by DropReason
}

func (c *TopicCounters) snapshot() TopicSnapshot {
	s := TopicSnapshot{
		Subscribers: c.subscribers.Load(),
		Published:   c.published.Load(),
		Delivered:   c.delivered.Load(),
		Replayed:    c.replayed.Load(),
	}
	for i := range s.Resets {
		s.Resets[i] = c.resets[i].Load()
	}
	for i := range s.Dropped {
		s.Dropped[i] = c.dropped[i].Load()
	}
	return s
}

// PublishBuckets are the upper bounds, in seconds, of the publish duration
// histogram: from an in-memory publish (tens of microseconds) to one that
// waited out overload_wait.
var PublishBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// rejectStatuses are the statuses a publish may be refused with, indexed
// from 400.
const rejectStatuses = 200

// HubCounters are one hub's counters: per declared topic, and for its
// publish handlers (durations, refusals by HTTP status).
type HubCounters struct {
	mu     sync.Mutex
	topics map[string]*TopicCounters // by declared name; never removed

	durations  [17]atomic.Uint64 // per PublishBuckets bound, then +Inf
	durationNs atomic.Uint64
	rejected   [rejectStatuses]atomic.Uint64
}

func newHubCounters() *HubCounters {
	return &HubCounters{topics: make(map[string]*TopicCounters)}
}

// Topic returns the counters of a declared topic, creating them. Names come
// from configuration (declarations), never from clients, so the map stays
// as small as the declarations ever loaded.
func (c *HubCounters) Topic(declared string) *TopicCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[declared]
	if t == nil {
		t = new(TopicCounters)
		c.topics[declared] = t
	}
	return t
}

// Snapshot copies a declared topic's counters; false when nothing was
// counted for it yet.
func (c *HubCounters) Snapshot(declared string) (TopicSnapshot, bool) {
	c.mu.Lock()
	t := c.topics[declared]
	c.mu.Unlock()
	if t == nil {
		return TopicSnapshot{}, false
	}
	return t.snapshot(), true
}

// Declared lists the declared names that have counters, sorted.
func (c *HubCounters) Declared() []string {
	c.mu.Lock()
	out := make([]string, 0, len(c.topics))
	for name := range c.topics {
		out = append(out, name)
	}
	c.mu.Unlock()
	sort.Strings(out)
	return out
}

// ObservePublish records how long one engine publish call took.
func (c *HubCounters) ObservePublish(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(PublishBuckets, s) // first bound >= s
	c.durations[i].Add(1)
	c.durationNs.Add(uint64(max(d, 0)))
}

// Reject records a publish refused with an HTTP status (4xx, 5xx).
func (c *HubCounters) Reject(status int) {
	if i := status - 400; i >= 0 && i < rejectStatuses {
		c.rejected[i].Add(1)
	}
}

// PublishSnapshot is a copy of the publish counters.
type PublishSnapshot struct {
	Buckets  []uint64 // cumulative counts per PublishBuckets bound
	Count    uint64
	Sum      float64        // seconds
	Rejected map[int]uint64 // by status; statuses never seen are absent
}

// Publishes copies the publish counters.
func (c *HubCounters) Publishes() PublishSnapshot {
	s := PublishSnapshot{Buckets: make([]uint64, len(PublishBuckets)), Rejected: make(map[int]uint64)}
	var cum uint64
	for i := range c.durations {
		cum += c.durations[i].Load()
		if i < len(PublishBuckets) {
			s.Buckets[i] = cum
		}
	}
	s.Count = cum
	s.Sum = float64(c.durationNs.Load()) / 1e9
	for i := range c.rejected {
		if n := c.rejected[i].Load(); n > 0 {
			s.Rejected[400+i] = n
		}
	}
	return s
}

// DeclaredName is the declaration a topic reference matched: the pattern
// for a concrete topic of one, else the topic itself.
func DeclaredName(ref TopicRef) string {
	if ref.Group != "" {
		return ref.Group
	}
	return ref.Name
}

// countersOf is the distinct counters of a subscriber's topics: a
// subscriber of chat/a and chat/b counts once for chat/*.
func countersOf(topics []*topic) []*TopicCounters {
	out := make([]*TopicCounters, 0, len(topics))
	for _, t := range topics {
		dup := false
		for _, c := range out {
			if c == t.ctr {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, t.ctr)
		}
	}
	return out
}

// Drop records that the server closed s's stream for reason. Only the
// first reason counts: a stream is dropped once. It reports whether this
// call was the one that counted.
func (s *Subscription) Drop(reason DropReason) bool {
	if reason == 0 || reason >= numDropReasons || !s.dropReason.CompareAndSwap(0, uint32(reason)) {
		return false
	}
	for _, c := range s.counters {
		c.dropped[reason].Add(1)
	}
	return true
}

// DropReason is why the hub dropped s (0 while it was not).
func (s *Subscription) DropReason() DropReason { return DropReason(s.dropReason.Load()) }

// CountReplay records what a resuming subscriber was sent: a reset, and
// the events of each topic's history (lists, with their topics' counters
// in ctrs) after the reset's id. An event retained in two topics the
// subscriber resumes counts in each.
func CountReplay(s *Subscription, rp Replay, lists [][]*Event, ctrs []*TopicCounters) {
	if rp.Reset != nil {
		i := resetUnknown
		if rp.Reset.Reason == "evicted" {
			i = resetEvicted
		}
		for _, c := range s.counters {
			c.resets[i].Add(1)
		}
	}
	if len(rp.Events) == 0 {
		return
	}
	var floor uint64
	if rp.Reset != nil {
		floor = rp.Reset.ID.Seq
	}
	for i, l := range lists {
		n := 0
		for _, ev := range l {
			if ev.ID.Seq > floor {
				n++
			}
		}
		ctrs[i].replayed.Add(uint64(n))
	}
}
