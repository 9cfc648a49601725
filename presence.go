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
// Bounded work: per concrete topic at most one flush per window. The first
// change after a quiet window is flushed at once; changes during the
// window wait for its end and leave together. A flush publishes, per user
// whose number of streams changed, one `join` (more) or `leave` (fewer),
// each carrying the topic's count at the flush. A user who joined and left
// within one window (net zero) is not reported: that is the coalescing.
// Subscribers without a user id count as one anonymous user; users beyond
// max_users in one window are reported as anonymous. So a flood of
// connects costs at most max_users+1 events per topic per window.

// Presence defaults.
const (
	DefaultPresenceWindow   = time.Second
	DefaultPresenceMaxUsers = 100
	// presencePublishTimeout bounds one flush's publish (Redis may hang);
	// a failed flush is logged, and the next one carries the right count.
	presencePublishTimeout = 5 * time.Second
)

// PresenceConfig is the sse handler's `presence` option.
type PresenceConfig struct {
	// Topic the join and leave events are published to: a concrete topic
	// name declared by some sse handler of the same hub.
	Topic string `json:"topic"`
	// Per topic, at most one flush of presence events per window; changes
	// within it are coalesced. Default: 1s.
	Window caddy.Duration `json:"window,omitempty"`
	// Users named per topic per window; the changes of further users are
	// reported without a user. Default: 100.
	MaxUsers int `json:"max_users,omitempty"`
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

	mu       sync.Mutex
	ref      hub.TopicRef // the presence topic, resolved once every handler declared its topics
	resolved bool
	window   time.Duration
	maxUsers int
	logger   *zap.Logger
	topics   map[string]*presenceTopic
	closed   bool
	app      *App // the configuration that set window and maxUsers

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
	name      string
	count     int            // open streams now
	changes   []userChange   // since the last flush, in the order users first changed
	index     map[string]int // user -> place in changes
	last      time.Time      // the last flush that published
	scheduled bool           // a flush is due
	publishMu sync.Mutex     // one flush of this topic at a time, in order
}

type userChange struct {
	user  string
	delta int
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
	if pc.Window < 0 || pc.MaxUsers < 0 {
		return fmt.Errorf("sse: presence %s: window and max_users must not be negative", pc.Topic)
	}
	window, maxUsers := time.Duration(pc.Window), pc.MaxUsers
	if window == 0 {
		window = DefaultPresenceWindow
	}
	if maxUsers == 0 {
		maxUsers = DefaultPresenceMaxUsers
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
	if p.app == h.app && (p.window != window || p.maxUsers != maxUsers) {
		p.mu.Unlock()
		return fmt.Errorf("sse: presence %s in hub %q is configured twice with different window or max_users (%v/%d and %v/%d)",
			pc.Topic, h.Hub, p.window, p.maxUsers, window, maxUsers)
	}
	p.window, p.maxUsers, p.logger, p.app = window, maxUsers, h.logger, h.app
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
		if i, ok := t.index[key]; ok {
			t.changes[i].delta += delta
		} else {
			t.index[key] = len(t.changes)
			t.changes = append(t.changes, userChange{key, delta})
		}
		if !t.scheduled {
			t.scheduled = true
			wait := max(p.window-p.now().Sub(t.last), 0)
			p.after(wait, func() { p.flush(t) })
		}
	}
}

// flush publishes a topic's changes since the last flush.
func (p *presenceTracker) flush(t *presenceTopic) {
	t.publishMu.Lock()
	defer t.publishMu.Unlock()
	p.mu.Lock()
	t.scheduled = false
	pubs := p.takeLocked(t)
	if len(pubs) > 0 {
		t.last = p.now()
	}
	engine, window, logger, closed := p.hub, p.window, p.logger, p.closed
	p.mu.Unlock()
	if len(pubs) > 0 && !closed {
		ctx, cancel := context.WithTimeout(context.Background(), presencePublishTimeout)
		_, err := engine.Publish(ctx, pubs, hub.PublishOptions{Wait: window})
		cancel()
		if err != nil && logger != nil {
			logger.Warn("presence events not published", zap.String("presence", p.topic),
				zap.String("topic", t.name), zap.Int("events", len(pubs)), zap.Error(err))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.count != 0 || len(t.changes) > 0 || t.scheduled || p.topics[t.name] != t {
		return
	}
	if len(pubs) > 0 && !p.closed {
		// Keep the topic one more window, so that its next change still
		// waits for the window since this flush.
		t.scheduled = true
		p.after(window, func() { p.flush(t) })
		return
	}
	delete(p.topics, t.name)
}

// takeLocked turns a topic's changes into events (one per user whose
// streams changed) and clears them.
func (p *presenceTracker) takeLocked(t *presenceTopic) []hub.Publication {
	if !p.resolved {
		// Cannot happen once the configuration started: the app checks
		// every presence topic before it starts.
		t.changes, t.index = t.changes[:0], make(map[string]int)
		return nil
	}
	var pubs []hub.Publication
	for _, c := range t.changes {
		if c.delta == 0 {
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
	clear(t.changes)
	t.changes = t.changes[:0]
	clear(t.index)
	return pubs
}
