package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Hub fans events out to subscribers and keeps each topic's replay ring. It
// knows nothing about Caddy or HTTP: the handlers resolve topic names against
// their configuration and hand the hub TopicRefs.
//
// One mutex orders everything: assigning ids, appending to rings, queueing
// to subscribers and registering a subscriber together with its replay
// snapshot. That single order is what makes the guarantees cheap to keep:
// a subscriber sees events in id order, and a subscribe racing a publish
// gets the event either in its replay or in its queue, never both or none.
// Queueing appends a pointer to each subscriber's queue and never blocks;
// telling subscribers, which may write to sockets, happens after the lock
// is released (notify.go). A publish that must wait for room (overload.go)
// waits with the lock released.
type Hub struct {
	mu           sync.Mutex
	epoch        string
	seq          uint64
	topics       map[string]*topic
	groups       map[string]*topicGroup // concrete topics of each pattern declaration
	forgottenSeq uint64                 // highest seq of any topic dropped from memory
	subscribers  int
	published    uint64 // events published, for stats
	dropped      uint64 // subscribers dropped for a full queue, for stats
	closed       bool
	op           uint64 // counts Publish and Subscribe calls, to pin their topics

	full atomic.Int64     // subscribers whose queue is at its bound (overload.go)
	room roomSignal       // wakes publishers waiting for room
	idem idempotencyStore // Idempotency-Keys seen (idempotency.go)
	ids  publicIDs        // PublicIDs of retained events (public_ids.go)

	counters *HubCounters // per declared topic, for metrics (counters.go)
}

// TopicRef is a concrete topic name with the settings of the declaration it
// matched. Group names a pattern declaration ("chat/*"); the concrete topics
// it spawns are capped at GroupMax, forgetting idle ones beyond that
// (hub_topics.go says which). Literal topics have no group.
type TopicRef struct {
	Name     string
	Ring     RingConfig
	Group    string
	GroupMax int
}

type topic struct {
	name   string
	grp    *topicGroup // nil for a literal topic
	ring   *ring
	subs   map[*Subscription]struct{}
	pinned uint64 // h.op of the last call that used it

	ctr       *TopicCounters // its declaration's counters (counters.go)
	published uint64         // events published to it, while it is held
	delivered atomic.Uint64  // deliveries of its events, while it is held (counted also by filter passes)
	dropped   uint64         // subscribers the hub dropped on its events

	// Place among its group's idle topics (topic_lru.go); list is nil
	// while it has subscribers or a call is using it.
	list       *topicList
	prev, next *topic
}

// ErrTooManyTopics is returned when a pattern declaration already holds its
// maximum of concrete topics and not enough of them may be forgotten. The
// hub's errors wrap it with the declaration and its limit.
var ErrTooManyTopics = errors.New("too many topics for this declaration; raise max_topics")

// ErrHubClosed is returned after Close.
var ErrHubClosed = errors.New("hub is closed")

// NewHub returns an empty hub in a new epoch.
func NewHub() *Hub {
	return &Hub{
		epoch:    NewEpoch(),
		topics:   make(map[string]*topic),
		groups:   make(map[string]*topicGroup),
		counters: newHubCounters(),
	}
}

// Counters are the hub's counters for metrics; they live as long as the hub.
func (h *Hub) Counters() *HubCounters { return h.counters }

// Epoch names this hub's life; it is part of every id the hub assigns.
func (h *Hub) Epoch() string { return h.epoch }

// Publication is one message and the topics it goes to.
type Publication struct {
	Message *Message
	Topics  []TopicRef
}

// PublishResult says what became of one publication: its id and how many of
// this hub's subscribers it was queued for (a subscriber of several of its
// topics counts once).
type PublishResult struct {
	ID        string `json:"id"`
	Delivered int    `json:"delivered"`
}

// Publish assigns ids to the publications, in order, appends them to their
// topics' rings and queues them for subscribers. The batch is all or
// nothing: it fails before any of it is published.
//
// With opts.IdempotencyKey, a key seen within the key window publishes
// nothing and answers the original results (Replayed); a duplicate that
// arrives while the first is publishing waits for its result.
func (h *Hub) Publish(ctx context.Context, pubs []Publication, opts PublishOptions) (PublishOutcome, error) {
	if opts.IdempotencyKey != "" {
		return h.idem.do(ctx, opts.IdempotencyKey, PublishFingerprint(pubs), func() ([]PublishResult, error) {
			return h.publishWait(ctx, pubs, opts.Wait)
		})
	}
	results, err := h.publishWait(ctx, pubs, opts.Wait)
	return PublishOutcome{Results: results}, err
}

// publishWait publishes once every subscriber of the publications' topics
// that is reading has room (overload.go), waiting for it at most wait (0:
// until ctx is done): past it nothing is published and the error is
// ErrOverloaded.
func (h *Hub) publishWait(ctx context.Context, pubs []Publication, wait time.Duration) ([]PublishResult, error) {
	if err := ValidatePublicIDs(pubs); err != nil {
		return nil, err
	}
	waiter := newRoomWaiter(h, ctx, wait)
	defer waiter.release()
	for {
		waiter.arm()
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrHubClosed
		}
		// Room first: a topic that does not exist yet has no subscriber
		// to wait for, and a publish refused for want of room has changed
		// nothing.
		if h.admitLocked(pubs) {
			break // holding the lock
		}
		h.mu.Unlock()
		if !waiter.wait() {
			return nil, ErrOverloaded
		}
	}
	// A PublicID in the hub's own id space refuses the batch before
	// anything changes.
	if err := h.checkPublicIDsLocked(pubs); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	h.op++
	// Find or create every topic first: that is the only step that can
	// fail, and it fails having changed nothing.
	if err := h.prepareTopicsLocked(pubs, usePublish); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	results := make([]PublishResult, len(pubs))
	// What filtered subscribers accept is counted after the lock is
	// released, by the filter passes (fanout_filter.go).
	filtered := make([]atomic.Int64, len(pubs))
	t0 := now()
	notify := takeNotifyList()
	defer putNotifyList(notify)
	for i, p := range pubs {
		h.seq++
		id := ID{Epoch: h.epoch, Seq: h.seq}
		m := p.Message
		ev := &Event{ID: id, Time: t0, Wire: EncodeEvent(id, m), Meta: m.Meta, PublicID: m.PublicID, HashID: m.HashID}
		delivered := 0
		for _, ref := range p.Topics {
			t := h.topics[ref.Name]
			t.ring.append(ev)
			t.published++
			t.ctr.published.Add(1)
			delivered += h.queueLocked(t, ev, notify, &filtered[i], false)
		}
		h.published++
		results[i] = PublishResult{ID: id.String(), Delivered: delivered}
	}
	h.relistLocked(pubs)
	h.mu.Unlock()
	h.dispatch(notify)
	for i := range results {
		results[i].Delivered += int(filtered[i].Load())
	}
	return results, nil
}

// checkPublicIDsLocked refuses a batch bearing a PublicID that reads as
// an id of this hub's epoch: a resume point naming it would be ambiguous.
// Ids retained events already bear are not refused: a reused id resolves
// to the earliest event bearing it (public_ids.go). validatePublicIDs has
// checked the rest.
func (h *Hub) checkPublicIDsLocked(pubs []Publication) error {
	for _, p := range pubs {
		if id := p.Message.PublicID; id != "" && inHubIDSpace(id, h.epoch) {
			return fmt.Errorf("%w: %q", ErrReservedID, Truncate(id, 64))
		}
	}
	return nil
}

// Subscribe registers a subscriber of topics with a queue of queueLen events
// and returns what it must be sent first. resume is the client's
// Last-Event-ID; "" is a fresh connect, which gets the newest events of
// the topics with replay_on_connect (snapshotLocked), nothing otherwise.
func (h *Hub) Subscribe(refs []TopicRef, resume string, queueLen int) (*Subscription, Replay, error) {
	return h.SubscribeWith(refs, SubscribeOptions{Resume: resume, QueueLen: queueLen})
}

// SubscribeWith is Subscribe with every option (engine.go).
//
// The replay snapshot and the registration happen under the hub lock, so
// every event is either in the replay or queued afterwards: no gap, no
// duplicate. The filter runs on the snapshot once the lock is released
// (replay.go): a costly one delays this subscriber only.
func (h *Hub) SubscribeWith(refs []TopicRef, opts SubscribeOptions) (*Subscription, Replay, error) {
	h.mu.Lock()
	s, err := h.registerLocked(refs, opts.QueueLen, opts.Filter)
	if err != nil {
		h.mu.Unlock()
		return nil, Replay{}, err
	}
	snap := h.snapshotLocked(s, opts)
	h.mu.Unlock()
	return s, snap.finish(s), nil
}

// Stats is a snapshot of a hub, for the admin API, logs and tests.
type Stats struct {
	Engine      string `json:"engine"` // "memory" or "redis"
	Connected   bool   `json:"connected"`
	LastError   string `json:"last_error,omitempty"`
	Epoch       string `json:"epoch"`
	LastID      string `json:"last_id"`
	LastSeq     uint64 `json:"-"`
	Topics      int    `json:"topics"`
	Subscribers int    `json:"subscribers"`
	Published   uint64 `json:"published"`
	DroppedSlow uint64 `json:"dropped_slow"`
	Retained    int    `json:"retained_events"`
	RetainedB   int64  `json:"retained_bytes"`
	// What the engine warns about (the Redis engine: a maxmemory-policy
	// that can evict the hub's keys). Engines add their own details
	// beside Stats (redishub.Details).
	Warning string `json:"warning,omitempty"`
}

// Stats reports the hub's size.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := Stats{
		Engine:      "memory",
		Connected:   true,
		Epoch:       h.epoch,
		LastID:      ID{Epoch: h.epoch, Seq: h.seq}.String(),
		LastSeq:     h.seq,
		Topics:      len(h.topics),
		Subscribers: h.subscribers,
		Published:   h.published,
		DroppedSlow: h.dropped,
	}
	for _, t := range h.topics {
		st.Retained += t.ring.len()
		st.RetainedB += t.ring.bytes
	}
	return st
}

// Close drops every subscriber and refuses further use; it is called when
// the last configuration using the hub goes away.
func (h *Hub) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	for _, t := range h.topics {
		for s := range t.subs {
			s.Drop(DropShutdown)
			h.removeLocked(s, true)
		}
	}
	return nil
}
