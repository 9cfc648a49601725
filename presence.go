package caddysse

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Presence (docs/subscribing.md, "Presence: who is online"): when a subscriber joins or leaves one of
// a route's topics, an event `join` / `leave` is published to the route's
// presence topic, so that apps can show who is online.
//
// What is counted: per concrete topic (a pattern's or placeholder's
// resolved name), the open streams of this Caddy instance on every route
// of the same hub that reports to the same presence topic. The counts live
// in a tracker pooled across reloads, so a reload, which closes streams
// that then reconnect, nets out within one window instead of reporting
// everyone as gone and back.
//
// Bounded work, per presence topic, however many topics and requests
// cause the changes: at most one flush per window, and at most max_events
// events per flush. The first change after a quiet window is flushed at
// once; changes during the window wait for its end and leave together. A
// flush publishes, per topic and per user whose number of streams changed,
// one `join` (more) or `leave` (fewer), each carrying the topic's count at
// the flush. A user who joined and left within one window (net zero) is
// not reported: that is the coalescing. Subscribers without a user id
// count as one anonymous user; users beyond max_users in one window are
// reported as anonymous. Events beyond max_events wait for the next
// window, topics in the order they first changed: nothing is lost, it
// comes later, with the count of then. So one connect naming 64 topics is
// one publish (not 64, each sent to every watcher), and no number of
// connects makes presence publish more than max_events events a window.

// Presence defaults.
const (
	DefaultPresenceWindow    = time.Second
	DefaultPresenceMaxUsers  = 100
	DefaultPresenceMaxEvents = 100
	// presencePublishTimeout bounds one flush's publish (Redis may hang);
	// a failed flush is logged, and the next one carries the right count.
	presencePublishTimeout = 5 * time.Second
)

// PresenceConfig is the sse handler's `presence` option.
type PresenceConfig struct {
	// Topic the join and leave events are published to: a concrete topic
	// name declared by some sse handler of the same hub.
	Topic string `json:"topic"`
	// At most one flush of presence events per window; changes within it
	// are coalesced. Default: 1s.
	Window caddy.Duration `json:"window,omitempty"`
	// Users named per topic per window; the changes of further users are
	// reported without a user. Default: 100.
	MaxUsers int `json:"max_users,omitempty"`
	// Presence events published per window, all topics together; further
	// ones wait for the next window. Default: 100.
	MaxEvents int `json:"max_events,omitempty"`
}

// presenceData is the data of a join or leave event.
type presenceData struct {
	Topic       string `json:"topic"`
	Subscribers int    `json:"subscribers"`
	User        string `json:"user,omitempty"`
}

// trackers are pooled by hub and presence topic: they outlive a reload.
var trackers = caddy.NewUsagePool()

type trackerKey struct {
	hub   hub.Engine
	topic string
}

// presenceTracker counts a hub's subscribers per topic for one presence
// topic and publishes their changes.
type presenceTracker struct {
	hub   hub.Engine
	topic string

	mu        sync.Mutex
	ref       hub.TopicRef // the presence topic, resolved once every handler declared its topics
	resolved  bool
	window    time.Duration
	maxUsers  int
	maxEvents int
	logger    *zap.Logger
	topics    map[string]*presenceTopic // topics with open streams or changes to report
	queue     presenceQueue             // topics with changes to report, in the order they first changed
	last      time.Time                 // the last flush that published
	scheduled bool                      // a flush is due
	closed    bool
	app       *App // the configuration that set the settings

	publishMu sync.Mutex // one flush at a time, in order

	// The clock, injected so tests drive windows without sleeping.
	now   func() time.Time
	after func(time.Duration, func())
}

func newPresenceTracker(engine hub.Engine, topic string) *presenceTracker {
	return &presenceTracker{hub: engine, topic: topic, topics: make(map[string]*presenceTopic),
		now: time.Now, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// presenceTopic is the state of one watched topic.
type presenceTopic struct {
	name    string
	count   int            // open streams now
	changes []userChange   // since the last flush, in the order users first changed
	index   map[string]int // user -> place in changes
	netted  int            // changes whose delta is not zero: events owed

	queued     bool // in the tracker's queue (netted > 0)
	prev, next *presenceTopic
}

type userChange struct {
	user  string
	delta int
}

// presenceQueue is a list of topics, so that a topic whose changes net out
// leaves it at once, wherever it is: a flood of connects and disconnects
// on fresh names leaves nothing behind for the next flush to walk.
type presenceQueue struct {
	head, tail *presenceTopic
}

func (q *presenceQueue) push(t *presenceTopic) {
	t.queued, t.prev, t.next = true, q.tail, nil
	if q.tail != nil {
		q.tail.next = t
	} else {
		q.head = t
	}
	q.tail = t
}

func (q *presenceQueue) remove(t *presenceTopic) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		q.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		q.tail = t.prev
	}
	t.queued, t.prev, t.next = false, nil, nil
}

// Destruct stops the tracker when no configuration uses it: flushes still
// due publish nothing.
func (p *presenceTracker) Destruct() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// setupPresence finds (or makes) the route's tracker and has the app check,
// once every handler has declared its topics, that the presence topic is
// declared in the hub.
func (h *SSEHandler) setupPresence() error {
	pc := h.Presence
	if pc == nil {
		return nil
	}
	if err := validPresenceTopic(pc.Topic); err != nil {
		return fmt.Errorf("sse: %v", err)
	}
	if pc.Window < 0 || pc.MaxUsers < 0 || pc.MaxEvents < 0 {
		return fmt.Errorf("sse: presence %s: window, max_users and max_events must not be negative", pc.Topic)
	}
	window, maxUsers, maxEvents := time.Duration(pc.Window), pc.MaxUsers, pc.MaxEvents
	if window == 0 {
		window = DefaultPresenceWindow
	}
	if maxUsers == 0 {
		maxUsers = DefaultPresenceMaxUsers
	}
	if maxEvents == 0 {
		maxEvents = DefaultPresenceMaxEvents
	}
	key := trackerKey{h.hub, pc.Topic}
	v, _, err := trackers.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newPresenceTracker(h.hub, pc.Topic), nil
	})
	if err != nil {
		return err
	}
	h.presence, h.presenceKey = v.(*presenceTracker), key
	p := h.presence
	// The newest configuration's settings apply; within one
	// configuration, routes sharing the tracker must agree on them.
	p.mu.Lock()
	if p.app == h.app && (p.window != window || p.maxUsers != maxUsers || p.maxEvents != maxEvents) {
		p.mu.Unlock()
		return fmt.Errorf("sse: presence %s in hub %q is configured twice with different window, max_users or max_events (%v/%d/%d and %v/%d/%d)",
			pc.Topic, h.Hub, p.window, p.maxUsers, p.maxEvents, window, maxUsers, maxEvents)
	}
	p.window, p.maxUsers, p.maxEvents, p.logger, p.app = window, maxUsers, maxEvents, h.logger, h.app
	p.mu.Unlock()
	table, hubName := h.table, h.Hub
	h.app.afterProvision(func() error {
		ref, ok := table.Lookup(pc.Topic)
		if !ok {
			return fmt.Errorf("sse: presence topic %q is not declared by any sse handler of hub %q", pc.Topic, hubName)
		}
		p.mu.Lock()
		p.ref, p.resolved = ref, true
		p.mu.Unlock()
		return nil
	})
	return nil
}

// validPresenceTopic accepts a concrete topic name: events are published to
// it, so it cannot be a pattern or a placeholder.
func validPresenceTopic(name string) error {
	if hub.ValidateDeclName(name) == nil && !(hub.TopicDecl{Name: name}).IsLiteral() {
		return fmt.Errorf("presence: %q must be a concrete topic name, not a pattern or placeholder", name)
	}
	if err := hub.ValidTopicName(name); err != nil {
		return fmt.Errorf("presence: %v", err)
	}
	if hub.InternalTopic(name) {
		return hub.ErrInternalTopic("presence", name)
	}
	return nil
}

// releasePresence gives the route's tracker back to the pool.
func (h *SSEHandler) releasePresence() {
	if h.presence == nil {
		return
	}
	if _, err := trackers.Delete(h.presenceKey); err != nil {
		h.logger.Error("releasing presence tracker", zap.Error(err))
	}
	h.presence = nil
}

// presenceJoin reports a new subscriber of refs and returns what reports
// its leaving. The user is Caddy's authenticated user, if any.
func (h *SSEHandler) presenceJoin(r *http.Request, refs []hub.TopicRef) (leave func()) {
	p := h.presence
	if p == nil {
		return func() {}
	}
	user := ""
	if repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); repl != nil {
		user, _ = repl.GetString("http.auth.user.id")
	}
	names := make([]string, 0, len(refs))
	for _, ref := range refs {
		// Watchers of the presence topic are not participants: their
		// joins are not reported.
		if ref.Name != p.topic {
			names = append(names, ref.Name)
		}
	}
	p.change(names, user, 1)
	return func() { p.change(names, user, -1) }
}

// change records that user's streams on topics changed by delta and makes
// sure a flush is due.
func (p *presenceTracker) change(topics []string, user string, delta int) {
	if len(topics) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for _, name := range topics {
		t := p.topics[name]
		if t == nil {
			t = &presenceTopic{name: name, index: make(map[string]int)}
			p.topics[name] = t
		}
		t.count += delta
		key := user
		if _, ok := t.index[key]; !ok && len(t.index) >= p.maxUsers {
			key = "" // beyond max_users: reported as anonymous
		}
		i, ok := t.index[key]
		if !ok {
			i = len(t.changes)
			t.index[key] = i
			t.changes = append(t.changes, userChange{key, 0})
		}
		before := t.changes[i].delta
		t.changes[i].delta += delta
		switch after := t.changes[i].delta; {
		case before == 0 && after != 0:
			t.netted++
		case before != 0 && after == 0:
			t.netted--
		}
		switch {
		case t.netted > 0 && !t.queued:
			p.queue.push(t)
		case t.netted == 0:
			// Everything since the last flush netted out (a page
			// reload, a connect and disconnect): nothing to report.
			if t.queued {
				p.queue.remove(t)
			}
			t.clearChanges()
			if t.count == 0 {
				delete(p.topics, name)
			}
		}
	}
	p.scheduleLocked()
}

// scheduleLocked makes sure a flush is due when changes wait: at once
// after a quiet window, else when the window since the last flush ends.
func (p *presenceTracker) scheduleLocked() {
	if p.scheduled || p.queue.head == nil {
		return
	}
	p.scheduled = true
	p.after(max(p.window-p.now().Sub(p.last), 0), p.flush)
}

// flush publishes the changes since the last flush, at most max_events of
// them; the rest wait for the next window.
func (p *presenceTracker) flush() {
	p.publishMu.Lock()
	defer p.publishMu.Unlock()
	p.mu.Lock()
	p.scheduled = false
	if p.closed {
		p.mu.Unlock()
		return
	}
	pubs := p.takeLocked()
	if len(pubs) > 0 {
		p.last = p.now()
	}
	p.scheduleLocked() // what did not fit
	engine, window, logger := p.hub, p.window, p.logger
	p.mu.Unlock()
	if len(pubs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), presencePublishTimeout)
	_, err := engine.Publish(ctx, pubs, hub.PublishOptions{Wait: window})
	cancel()
	if err != nil && logger != nil {
		logger.Warn("presence events not published", zap.String("presence", p.topic),
			zap.Int("events", len(pubs)), zap.Error(err))
	}
}

// takeLocked turns queued changes into events, one per user whose streams
// changed, topic after topic in queue order, until max_events. A topic cut
// short keeps its place at the head of the queue with what is left.
func (p *presenceTracker) takeLocked() []hub.Publication {
	var pubs []hub.Publication
	for t := p.queue.head; t != nil && len(pubs) < p.maxEvents; t = p.queue.head {
		taken := 0
		for _, c := range t.changes {
			if len(pubs) == p.maxEvents {
				break
			}
			taken++
			if c.delta == 0 {
				continue
			}
			if !p.resolved {
				// Cannot happen once the configuration started: the app
				// checks every presence topic before it starts.
				continue
			}
			kind := "join"
			if c.delta < 0 {
				kind = "leave"
			}
			data, _ := json.Marshal(presenceData{Topic: t.name, Subscribers: t.count, User: c.user})
			pubs = append(pubs, hub.Publication{
				Message: &hub.Message{Topics: []string{p.topic}, Name: kind, Data: string(data)},
				Topics:  []hub.TopicRef{p.ref},
			})
		}
		if taken < len(t.changes) {
			t.keepChanges(t.changes[taken:])
			if t.netted > 0 {
				break // the budget is spent: t waits at the head
			}
		}
		p.queue.remove(t)
		t.clearChanges()
		if t.count == 0 {
			delete(p.topics, t.name)
		}
	}
	return pubs
}

// clearChanges forgets a topic's changes once reported (or netted out).
func (t *presenceTopic) clearChanges() {
	clear(t.changes)
	t.changes = t.changes[:0]
	clear(t.index)
	t.netted = 0
}

// keepChanges keeps rest, the changes of a topic not reported yet, less
// those that netted out.
func (t *presenceTopic) keepChanges(rest []userChange) {
	kept := t.changes[:0]
	clear(t.index)
	for _, c := range rest { // rest is a later part of t.changes: copying forward is safe
		if c.delta != 0 {
			t.index[c.user] = len(kept)
			kept = append(kept, c)
		}
	}
	clear(t.changes[len(kept):])
	t.changes = kept
	t.netted = len(kept)
}
