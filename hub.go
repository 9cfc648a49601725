package caddysse

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
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
// Queueing is a non-blocking channel send, so the lock is held briefly.
type Hub struct {
	mu           sync.Mutex
	epoch        string
	seq          uint64
	topics       map[string]*topic
	groupSizes   map[string]int // concrete topics held per pattern declaration
	forgottenSeq uint64         // highest seq of any topic dropped from memory
	subscribers  int
	published    uint64 // events published, for stats
	dropped      uint64 // subscribers dropped for a full queue, for stats
	closed       bool
	op           uint64 // counts Publish and Subscribe calls, to pin their topics

	idem idempotencyStore // Idempotency-Keys seen (idempotency.go)
}

// TopicRef is a concrete topic name with the settings of the declaration it
// matched. Group names a pattern declaration ("chat/*"); the concrete topics
// it spawns are capped at GroupMax, forgetting the least recently used idle
// one beyond that. Literal topics have no group.
type TopicRef struct {
	Name     string
	Ring     RingConfig
	Group    string
	GroupMax int
}

type topic struct {
	name     string
	group    string
	ring     *ring
	subs     map[*Subscription]struct{}
	lastUsed uint64 // seq at the last publish or subscribe, for LRU forgetting
	pinned   uint64 // h.op of the last call that used it
}

// ErrTooManyTopics is returned when a pattern declaration already holds its
// maximum of concrete topics and none of them can be forgotten.
var ErrTooManyTopics = errors.New("too many topics for this declaration; raise max_topics")

// ErrHubClosed is returned after Close.
var ErrHubClosed = errors.New("hub is closed")

// NewHub returns an empty hub in a new epoch.
func NewHub() *Hub {
	return &Hub{
		epoch:      NewEpoch(),
		topics:     make(map[string]*topic),
		groupSizes: make(map[string]int),
	}
}

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
	publish := func() ([]PublishResult, error) { return h.publish(pubs) }
	if opts.IdempotencyKey != "" {
		return h.idem.do(ctx, opts.IdempotencyKey, publishFingerprint(pubs), publish)
	}
	results, err := publish()
	return PublishOutcome{Results: results}, err
}

func (h *Hub) publish(pubs []Publication) ([]PublishResult, error) {
	results := make([]PublishResult, len(pubs))
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	h.op++
	// Create every topic first: that is the only step that can fail.
	for _, p := range pubs {
		for _, ref := range p.Topics {
			if _, err := h.topicLocked(ref); err != nil {
				h.mu.Unlock()
				return nil, err
			}
		}
	}
	t0 := now()
	notify := takeNotifyList()
	defer putNotifyList(notify)
	for i, p := range pubs {
		h.seq++
		id := ID{Epoch: h.epoch, Seq: h.seq}
		ev := &Event{ID: id, Time: t0, Wire: encodeEvent(id, p.Message)}
		delivered := 0
		for _, ref := range p.Topics {
			t := h.topics[ref.Name]
			t.lastUsed = h.seq
			t.ring.append(ev)
			delivered += h.queueLocked(t, ev, notify)
		}
		h.published++
		results[i] = PublishResult{ID: id.String(), Delivered: delivered}
	}
	h.mu.Unlock()
	notify.dispatch()
	return results, nil
}

// queueLocked offers ev to t's subscribers and collects them for notify.
// A subscriber of several of the event's topics gets it once, and one whose
// replay already covered it (Redis engine) not at all. A full queue drops
// the subscriber. It returns how many it was queued for.
func (h *Hub) queueLocked(t *topic, ev *Event, notify *notifyList) int {
	seq, queued := ev.ID.Seq, 0
	for s := range t.subs {
		if s.lastSeq == seq || seq <= s.floor {
			continue
		}
		s.lastSeq = seq
		if s.offer(ev) {
			queued++
			notify.add(s, h.op)
		} else {
			h.dropped++
			h.removeLocked(s, true)
		}
	}
	return queued
}

// topicLocked finds or creates the topic for ref, applying ref's ring
// settings (a reload may have changed them).
func (h *Hub) topicLocked(ref TopicRef) (*topic, error) {
	if t, ok := h.topics[ref.Name]; ok {
		t.pinned = h.op
		if t.ring.cfg != ref.Ring {
			t.ring.setConfig(ref.Ring)
		}
		return t, nil
	}
	if ref.Group != "" && ref.GroupMax > 0 && h.groupSizes[ref.Group] >= ref.GroupMax {
		if !h.forgetIdleLocked(ref.Group, ref.GroupMax) {
			return nil, ErrTooManyTopics
		}
	}
	t := &topic{name: ref.Name, group: ref.Group, ring: newRing(ref.Ring), subs: make(map[*Subscription]struct{}), pinned: h.op}
	// A topic that was forgotten may have held events; whoever resumes
	// on it must be told they may have missed them.
	t.ring.evictedSeq = h.forgottenSeq
	h.topics[ref.Name] = t
	if ref.Group != "" {
		h.groupSizes[ref.Group]++
	}
	return t, nil
}

// forgetIdleLocked drops the least recently used tenth of a group's topics
// that have no subscribers, so a cap reached by churn (one topic per user)
// costs one scan per many creations. It reports whether room was made.
func (h *Hub) forgetIdleLocked(group string, max int) bool {
	var idle []*topic
	for _, t := range h.topics {
		if t.group == group && len(t.subs) == 0 && t.pinned != h.op {
			idle = append(idle, t)
		}
	}
	if len(idle) == 0 {
		return false
	}
	n := max/10 + 1
	if n > len(idle) {
		n = len(idle)
	}
	// partial selection of the n least recently used
	for i := 0; i < n; i++ {
		min := i
		for j := i + 1; j < len(idle); j++ {
			if idle[j].lastUsed < idle[min].lastUsed {
				min = j
			}
		}
		idle[i], idle[min] = idle[min], idle[i]
		h.dropTopicLocked(idle[i])
	}
	return true
}

func (h *Hub) dropTopicLocked(t *topic) {
	if t.ring.len() > 0 || t.ring.evictedSeq > 0 {
		h.forgottenSeq = max(h.forgottenSeq, h.seq)
	}
	delete(h.topics, t.name)
	if t.group != "" {
		h.groupSizes[t.group]--
	}
}

// Prune forgets every idle topic for which keep reports false: after a
// reload, topics no longer declared stop holding memory.
func (h *Hub) Prune(keep func(name string) (RingConfig, bool)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.topics {
		cfg, ok := keep(t.name)
		if !ok {
			if len(t.subs) == 0 {
				h.dropTopicLocked(t)
			}
			continue
		}
		if t.ring.cfg != cfg {
			t.ring.setConfig(cfg)
		}
	}
}

func (h *Hub) removeLocked(s *Subscription, drop bool) {
	if s.removed {
		return
	}
	s.removed = true
	for _, t := range s.topics {
		delete(t.subs, s)
	}
	h.subscribers--
	if drop {
		close(s.done)
	}
}

// Replay is what a new subscriber gets before live events.
type Replay struct {
	Reset  *Reset   // non-nil when the resume point could not be honoured whole
	Events []*Event // retained events after the resume point, in id order
	// Later, when not nil, means the replay is not known yet (the Redis
	// engine is unreachable): it arrives on Later, and no live event may
	// be sent before it. The subscriber's live events wait in its queue.
	Later <-chan Replay
}

// Reset tells a subscriber that its resume point could not be honoured.
type Reset struct {
	Reason      string // "evicted" or "unknown"
	LastEventID string // what the client sent, cut to 128 bytes
	ID          ID     // resuming from this id does not reset again
}

// Wire renders the reset as the event DESIGN.md describes.
func (r *Reset) Wire() []byte {
	data, _ := json.Marshal(struct {
		Reason      string `json:"reason"`
		LastEventID string `json:"last_event_id"`
	}{r.Reason, r.LastEventID})
	return encodeEvent(r.ID, &Message{Name: "reset", Data: string(data)})
}

const maxEchoedIDLen = 128

// Subscribe registers a subscriber of topics with a queue of queueLen events
// and returns what it must be sent first. resume is the client's
// Last-Event-ID ("" for a fresh connect, which replays nothing).
//
// The replay snapshot and the registration happen under the hub lock, so
// every event is either in the replay or queued afterwards: no gap, no
// duplicate.
func (h *Hub) Subscribe(refs []TopicRef, resume string, queueLen int) (*Subscription, Replay, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, err := h.registerLocked(refs, queueLen)
	if err != nil {
		return nil, Replay{}, err
	}
	var rp Replay
	if resume != "" {
		rp = h.replayLocked(s.topics, resume)
	}
	return s, rp, nil
}

// register adds a subscriber and returns the position it joins at: it
// will be offered every event delivered after that id. The Redis engine
// registers first and fetches the replay up to that position afterwards.
func (h *Hub) register(refs []TopicRef, queueLen int) (*Subscription, ID, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, err := h.registerLocked(refs, queueLen)
	if err != nil {
		return nil, ID{}, err
	}
	return s, ID{Epoch: h.epoch, Seq: h.seq}, nil
}

func (h *Hub) registerLocked(refs []TopicRef, queueLen int) (*Subscription, error) {
	if h.closed {
		return nil, ErrHubClosed
	}
	if queueLen < 1 {
		queueLen = 1
	}
	s := &Subscription{
		hub:   h,
		max:   queueLen,
		ready: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	h.op++
	for _, ref := range refs {
		t, err := h.topicLocked(ref)
		if err != nil {
			return nil, err
		}
		s.topics = append(s.topics, t)
	}
	for _, t := range s.topics {
		t.subs[s] = struct{}{}
		t.lastUsed = h.seq
	}
	s.lastSeq = h.seq
	h.subscribers++
	return s, nil
}

func (h *Hub) replayLocked(topics []*topic, resume string) Replay {
	id, ok := ParseID(resume)
	if !ok || id.Epoch != h.epoch || id.Seq > h.seq {
		return unknownReset(resume, ID{Epoch: h.epoch, Seq: h.seq})
	}
	var evicted uint64
	lists := make([][]*Event, 0, len(topics))
	for _, t := range topics {
		if t.ring.gapAfter(id.Seq) {
			evicted = max(evicted, t.ring.evictedSeq)
		}
		if l := t.ring.after(id.Seq); len(l) > 0 {
			lists = append(lists, l)
		}
	}
	return assembleReplay(h.epoch, resume, lists, evicted)
}

// unknownReset is the replay of a resume point this hub never issued (or
// from an earlier epoch): a reset, then live events from position on.
func unknownReset(resume string, position ID) Replay {
	return Replay{Reset: &Reset{
		Reason:      "unknown",
		LastEventID: truncateBytes(resume, maxEchoedIDLen),
		ID:          position,
	}}
}

// assembleReplay merges the retained events of a subscriber's topics after
// its resume point. When evicted is above the resume point, the subscriber
// missed something: it gets an "evicted" reset carrying that seq, and only
// events newer than it follow, so its Last-Event-ID never moves backwards
// past the reset.
func assembleReplay(epoch, resume string, lists [][]*Event, evicted uint64) Replay {
	var rp Replay
	if evicted > 0 {
		rp.Reset = &Reset{
			Reason:      "evicted",
			LastEventID: truncateBytes(resume, maxEchoedIDLen),
			ID:          ID{Epoch: epoch, Seq: evicted},
		}
	}
	rp.Events = mergeEvents(lists)
	if evicted > 0 {
		i := 0
		for i < len(rp.Events) && rp.Events[i].ID.Seq <= evicted {
			i++
		}
		rp.Events = rp.Events[i:]
	}
	return rp
}

// truncateBytes cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
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
	// Resuming subscribers waiting for Redis to return their replay.
	WaitingReplay int `json:"waiting_replay,omitempty"`
	// Redis's maxmemory-policy ("unknown" when CONFIG GET is refused), and
	// a warning when it can evict the hub's keys.
	RedisPolicy string `json:"redis_policy,omitempty"`
	Warning     string `json:"warning,omitempty"`
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
			h.removeLocked(s, true)
		}
	}
	return nil
}
