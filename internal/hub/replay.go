package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// now is the clock of the replay rings; tests replace it so that age-based
// eviction is tested without sleeping.
var now = time.Now

// RingConfig bounds what a topic keeps for resuming subscribers. These are a
// topic's settings: two declarations of one topic must agree on them.
type RingConfig struct {
	Replay     int           // events kept; 0 keeps none
	ReplaySize int64         // bytes kept
	ReplayAge  time.Duration // events older than this are dropped; 0: no age limit
	// OnConnect is how many of the newest retained events a subscriber
	// with no resume point gets first (replay_on_connect); at most Replay.
	OnConnect int
}

// Defaults (docs/reference.md).
const (
	DefaultReplay     = 1000
	DefaultReplaySize = 4 << 20
)

// MaxSize caps every size setting (1TiB): beyond it a value means "no
// limit" by mistake and invites overflow.
const MaxSize = 1 << 40

// NewRingConfig checks a topic's replay settings and applies the defaults:
// replay nil keeps DefaultReplay events, size 0 DefaultReplaySize bytes,
// age 0 keeps events until they are evicted; onConnect is how many of the
// newest a subscriber without a resume point gets first (at most replay).
func NewRingConfig(replay *int, size int64, age time.Duration, onConnect int) (RingConfig, error) {
	ring := DefaultRingConfig()
	if replay != nil {
		if *replay < 0 {
			return RingConfig{}, errors.New("replay must not be negative")
		}
		ring.Replay = *replay
	}
	if size < 0 || size > MaxSize {
		return RingConfig{}, errors.New("replay_size must not be negative or over 1TiB")
	}
	if size > 0 {
		ring.ReplaySize = size
	}
	if age < 0 {
		return RingConfig{}, errors.New("replay_age must not be negative")
	}
	ring.ReplayAge = age
	switch {
	case onConnect < 0:
		return RingConfig{}, errors.New("replay_on_connect must not be negative")
	case onConnect > ring.Replay:
		// Capping silently would promise history the ring never keeps.
		return RingConfig{}, fmt.Errorf("replay_on_connect %d is more than the %d events replay keeps; raise replay or lower replay_on_connect",
			onConnect, ring.Replay)
	}
	ring.OnConnect = onConnect
	return ring, nil
}

// DefaultRingConfig is what a topic declared without settings gets.
func DefaultRingConfig() RingConfig {
	return RingConfig{Replay: DefaultReplay, ReplaySize: DefaultReplaySize}
}

// ring is one topic's history: the newest events that fit its RingConfig, in
// id order. It remembers the highest sequence number it ever evicted, which
// is what tells a resuming subscriber whether it missed something.
// It is not safe for concurrent use; the hub's lock guards it.
type ring struct {
	cfg        RingConfig
	events     []*Event // events[start:] are retained, oldest first
	start      int
	bytes      int64
	evictedSeq uint64
	// ids is the hub's index of PublicIDs, told what this ring retains;
	// public counts the retained events that have one, so that forgetting
	// a ring without any costs no scan.
	ids    *publicIDs
	public int
}

func newRing(cfg RingConfig) *ring { return &ring{cfg: cfg} }

func (r *ring) len() int { return len(r.events) - r.start }

// setConfig applies new limits (a reload may change them), evicting at once
// what no longer fits.
func (r *ring) setConfig(cfg RingConfig) {
	r.cfg = cfg
	r.trim()
}

func (r *ring) append(e *Event) {
	r.events = append(r.events, e)
	r.bytes += e.Size()
	if e.PublicID != "" && r.ids != nil {
		r.ids.hold(r, e)
		r.public++
	}
	r.trim()
}

// forget releases the PublicIDs of everything retained: the ring's topic
// is being forgotten.
func (r *ring) forget() {
	if r.public == 0 || r.ids == nil {
		return
	}
	for _, e := range r.events[r.start:] {
		if e.PublicID != "" {
			r.ids.release(r, e)
		}
	}
	r.public = 0
}

// after returns the retained events with a sequence number above seq.
func (r *ring) after(seq uint64) []*Event {
	r.expire()
	live := r.events[r.start:]
	i := sort.Search(len(live), func(i int) bool { return live[i].ID.Seq > seq })
	return live[i:]
}

// gapAfter reports whether an event newer than seq has been evicted, i.e.
// whether a subscriber that has everything up to seq missed something.
func (r *ring) gapAfter(seq uint64) bool {
	r.expire()
	return r.evictedSeq > seq
}

func (r *ring) trim() {
	for r.len() > 0 && (r.len() > r.cfg.Replay || r.bytes > r.cfg.ReplaySize) {
		r.evictOldest()
	}
	r.expire()
}

func (r *ring) expire() {
	if r.cfg.ReplayAge <= 0 {
		return
	}
	cutoff := now().Add(-r.cfg.ReplayAge)
	for r.len() > 0 && r.events[r.start].Time.Before(cutoff) {
		r.evictOldest()
	}
}

func (r *ring) evictOldest() {
	e := r.events[r.start]
	r.events[r.start] = nil // let the event be collected
	r.start++
	r.bytes -= e.Size()
	if e.PublicID != "" && r.ids != nil {
		r.ids.release(r, e)
		r.public--
	}
	if e.ID.Seq > r.evictedSeq {
		r.evictedSeq = e.ID.Seq
	}
	// Compact once the dead prefix dominates, so memory follows what is
	// retained and appends stay amortised O(1).
	if r.start >= 32 && r.start*2 >= len(r.events) {
		n := copy(r.events, r.events[r.start:])
		clear(r.events[n:])
		r.events = r.events[:n]
		r.start = 0
	}
}

// last returns the newest n retained events, oldest first.
func (r *ring) last(n int) []*Event {
	r.expire()
	live := r.events[r.start:]
	return live[max(len(live)-n, 0):]
}

// MergeEvents merges id-ordered lists into one, dropping the duplicates of
// an event published to several of them.
func MergeEvents(lists [][]*Event) []*Event {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return append([]*Event(nil), lists[0]...)
	}
	var all []*Event
	for _, l := range lists {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID.Seq < all[j].ID.Seq })
	out := all[:0]
	for _, e := range all {
		if len(out) > 0 && out[len(out)-1].ID.Seq == e.ID.Seq {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Resuming: what a subscriber gets before live events, decided from the
// rings of its topics and its resume point.

// Replay is what a new subscriber gets before live events.
type Replay struct {
	Reset  *Reset   // non-nil when the resume point could not be honoured whole
	Events []*Event // retained events after the resume point, in id order
	// Later, when not nil, means the replay is not known yet: an engine
	// whose history lives elsewhere cannot read it now (Redis is
	// unreachable). It arrives on Later, and no live event may be sent
	// before it. The subscriber's live events wait in its queue, and the
	// stream parks the subscriber meanwhile (Subscription.Park). The
	// engine then calls SkipThrough with where the replay ended.
	Later <-chan Replay
	// Predecessor, with SubscribeOptions.Predecessor, is the id of the
	// event preceding the first event sent (predecessorOf): the resume
	// point as the client sent it when it was found and honoured whole;
	// "" when the resume point is unknown, events after it were
	// discarded (a reset), or with Earliest. A route may tell the client
	// where its stream starts with it ("" is "earliest").
	Predecessor string
}

// Reset tells a subscriber that its resume point could not be honoured.
type Reset struct {
	Reason      string // "evicted" or "unknown"
	LastEventID string // what the client sent, cut to 128 bytes
	ID          ID     // resuming from this id does not reset again
}

// Wire renders the reset as the event docs/subscribing.md describes ("Resume and reset").
func (r *Reset) Wire() []byte {
	data, _ := json.Marshal(struct {
		Reason      string `json:"reason"`
		LastEventID string `json:"last_event_id"`
	}{r.Reason, r.LastEventID})
	return EncodeEvent(r.ID, &Message{Name: "reset", Data: string(data)})
}

const maxEchoedIDLen = 128

// A subscriber's replay is taken in two steps (docs/architecture.md): under the hub's lock, with its registration, a snapshot of what
// its topics retain past its resume point (copies of the rings' pointers:
// the rings change once the lock is released); then, outside the lock, its
// filter and the assembly. The filter runs for every retained event of the
// topics (a ring holds at most its replay count) on the subscribing
// request's own goroutine, so an "earliest" with costly patterns against a
// full ring costs that request, not every publish of the hub. Live events
// after the snapshot are queued (or staged) as they come: no gap, no
// duplicate, as before.

// replaySnapshot is the lock-held half of a replay.
type replaySnapshot struct {
	unknown  *Replay // the resume point is unknown: this reset, nothing else
	resuming bool    // a resume point (evicted resets apply), else initial or earliest
	epoch    string
	resume   string
	evicted  uint64
	lists    [][]*Event // per topic, unfiltered copies
	ctrs     []*TopicCounters
	// predecessor: answer Replay.Predecessor (predecessorOf)
	predecessor bool
}

// add keeps a copy of a ring's events l for the topic counted by ctr.
func (snap *replaySnapshot) add(l []*Event, ctr *TopicCounters) {
	if len(l) > 0 {
		snap.lists = append(snap.lists, slices.Clone(l))
		snap.ctrs = append(snap.ctrs, ctr)
	}
}

// snapshotLocked takes s's replay snapshot for opts: every retained event
// with Earliest, those after the resume point, or the newest
// replay_on_connect of each topic without one.
func (h *Hub) snapshotLocked(s *Subscription, opts SubscribeOptions) replaySnapshot {
	snap := replaySnapshot{epoch: h.epoch, resume: opts.Resume}
	switch {
	case opts.Earliest:
		// "earliest": what was evicted before was never asked
		// for, so no reset.
		for _, t := range s.topics {
			snap.add(t.ring.after(0), t.ctr)
		}
	case opts.Resume != "":
		seq, ok := h.resumeSeqLocked(s, opts.Resume)
		if !ok {
			rp := UnknownReset(opts.Resume, ID{Epoch: h.epoch, Seq: h.seq})
			snap.unknown = &rp
			return snap
		}
		snap.resuming = true
		for _, t := range s.topics {
			if t.ring.gapAfter(seq) {
				snap.evicted = max(snap.evicted, t.ring.evictedSeq)
			}
			snap.add(t.ring.after(seq), t.ctr)
		}
		snap.predecessor = opts.Predecessor > 0
	default:
		// The newest n events, then the filter: replay_on_connect counts
		// what the topic holds, not what this subscriber sees. Events
		// published later are queued for it, so none is missed or sent
		// twice.
		for _, t := range s.topics {
			if n := t.ring.cfg.OnConnect; n > 0 {
				snap.add(t.ring.last(n), t.ctr)
			}
		}
	}
	return snap
}

// finish filters the snapshot with s's filter and assembles the replay,
// outside the hub's lock: merged in id order (an event of several topics
// once), after an "evicted" reset's id when there is one, and counted.
func (snap *replaySnapshot) finish(s *Subscription) Replay {
	if snap.unknown != nil {
		CountReplay(s, *snap.unknown, nil, nil)
		return *snap.unknown
	}
	lists := snap.lists[:0]
	ctrs := snap.ctrs[:0]
	for i, l := range snap.lists {
		if l = FilterEvents(l, s.Filter); len(l) > 0 {
			lists = append(lists, l)
			ctrs = append(ctrs, snap.ctrs[i])
		}
	}
	var rp Replay
	if snap.resuming {
		rp = AssembleReplay(snap.epoch, snap.resume, lists, snap.evicted)
	} else {
		rp = Replay{Events: MergeEvents(lists)}
	}
	CountReplay(s, rp, lists, ctrs)
	if snap.predecessor {
		rp.Predecessor = PredecessorOf(snap.resume, rp)
	}
	return rp
}

// resumeSeqLocked reads a resume point as the seq it resumes after: a hub
// id of this epoch, "#"-prefixed or not, or the PublicID of an event that
// one of s's topics retains (the earliest, when several bear it). A
// PublicID never reads as a hub id of the epoch (checkPublicIDsLocked
// refuses those), so the order of the tests decides nothing.
func (h *Hub) resumeSeqLocked(s *Subscription, resume string) (uint64, bool) {
	hubID := strings.TrimPrefix(resume, "#")
	if id, ok := ParseID(hubID); ok && id.Epoch == h.epoch {
		return id.Seq, id.Seq <= h.seq
	}
	if hubID != resume {
		return 0, false // '#' starts hub ids only
	}
	ev := h.ids.earliest(resume, s.rings)
	if ev == nil {
		return 0, false
	}
	return ev.ID.Seq, true
}

// rings yields the rings of s's topics.
func (s *Subscription) rings(yield func(*ring) bool) {
	for _, t := range s.topics {
		if !yield(t.ring) {
			return
		}
	}
}

// FilterEvents returns the events of l that f accepts, in a new slice when
// it refuses any (l may be a ring's own array); all of l when f is nil.
func FilterEvents(l []*Event, f func(*Event) bool) []*Event {
	if f == nil {
		return l
	}
	for i, e := range l {
		if !f(e) {
			out := append(make([]*Event, 0, len(l)-1), l[:i]...)
			for _, e := range l[i+1:] {
				if f(e) {
					out = append(out, e)
				}
			}
			return out
		}
	}
	return l
}

// PredecessorOf is where a replay resumed from resume starts, for a
// route to tell the client: the id of the event
// preceding the first event sent. When the resume point was found and
// honoured whole, that is the resume point itself, as the client sent it:
// the client compares it with what it asked for, and an equal value says
// nothing was lost. Otherwise (unknown, or events after it discarded: a
// reset) there is no such event the client may be told of, and it is ""
// ("earliest" on the wire). It never names another event: a subscriber
// learns no id from it beyond the one it sent, and no event it may not
// read (spec, Authorization on Event Replay).
func PredecessorOf(resume string, rp Replay) string {
	if rp.Reset != nil || resume == "" {
		return ""
	}
	return resume
}

// UnknownReset is the replay of a resume point this hub never issued (or
// from an earlier epoch): a reset, then live events from position on.
func UnknownReset(resume string, position ID) Replay {
	return Replay{Reset: &Reset{
		Reason:      "unknown",
		LastEventID: truncateBytes(resume, maxEchoedIDLen),
		ID:          position,
	}}
}

// AssembleReplay merges the retained events of a subscriber's topics after
// its resume point. When evicted is above the resume point, the subscriber
// missed something: it gets an "evicted" reset carrying that seq, and only
// events newer than it follow, so its Last-Event-ID never moves backwards
// past the reset.
func AssembleReplay(epoch, resume string, lists [][]*Event, evicted uint64) Replay {
	var rp Replay
	if evicted > 0 {
		rp.Reset = &Reset{
			Reason:      "evicted",
			LastEventID: truncateBytes(resume, maxEchoedIDLen),
			ID:          ID{Epoch: epoch, Seq: evicted},
		}
	}
	rp.Events = MergeEvents(lists)
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
