package hub

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Engine is what the handlers publish to and subscribe from: the in-memory
// Hub (the default) or a RedisHub shared by several Caddy instances. Both
// keep the same promises: ids increase, a subscriber sees events in id
// order, and a resume point either replays exactly what was missed or says
// with a reset that it cannot.
type Engine interface {
	// Publish assigns ids to the publications, in order, and delivers
	// them. The batch is all or nothing. opts.Wait (and ctx) bound how
	// long the publish may wait for room when subscribers are behind
	// (ErrOverloaded).
	Publish(ctx context.Context, pubs []Publication, opts PublishOptions) (PublishOutcome, error)
	// SubscribeWith registers a subscriber and returns what it must be
	// sent before live events: its replay from opts.Resume (the client's
	// Last-Event-ID), or everything retained with opts.Earliest.
	SubscribeWith(refs []TopicRef, opts SubscribeOptions) (*Subscription, Replay, error)
	// Prune forgets idle topics for which keep reports false and applies
	// changed ring settings.
	Prune(keep func(name string) (RingConfig, bool))
	// Stats reports the engine's size and health.
	Stats() Stats
	// Counters are what the engine counted for metrics (counters.go); they
	// live as long as the engine.
	Counters() *HubCounters
	// Topics lists the concrete topics the engine holds, by name, after
	// the name after, at most limit of them; more reports whether others
	// follow.
	Topics(after string, limit int) (topics []TopicInfo, more bool)
	// Topic describes one concrete topic; false when the engine holds
	// nothing of it.
	Topic(ctx context.Context, name string) (TopicInfo, bool)
	// Close drops every subscriber and releases the engine.
	Close() error
}

// SubscribeOptions are a subscription's settings.
type SubscribeOptions struct {
	// Resume is the client's Last-Event-ID: a hub id ("<epoch>-<seq>",
	// or "#<epoch>-<seq>"), or the PublicID of a retained event of the
	// subscribed topics (the earliest, when several bear it). Both resume
	// exactly after that event; anything else gets the "unknown" reset.
	// "" is a fresh connect.
	Resume string
	// Earliest replays every retained event of the topics, with no reset
	// ("earliest"); it takes precedence over Resume.
	Earliest bool
	// QueueLen bounds the subscriber's queue in events.
	QueueLen int
	// Filter, when not nil, decides which events the subscriber gets,
	// live and replayed: a refused event is not queued for it, not
	// counted as delivered to it, and does not fill its queue. It never
	// runs under the hub's lock: live events are filtered by the
	// publishing goroutine once the lock is released, one pass at a time
	// per subscriber and in id order (fanout_filter.go), and the replay
	// by the subscribing one (replay.go). A costly filter therefore slows
	// the publishes of its own topics, never those of other topics; it
	// should still be cheap (cache decisions; Event.Decoded decodes Meta
	// once per event), and must not block or call the hub.
	Filter func(*Event) bool
	// Predecessor > 0 asks for Replay.Predecessor. (It no longer scans
	// back: the predecessor of an honoured resume point is that point.)
	Predecessor int
}

// PublishOptions are a publish's settings beyond its events.
type PublishOptions struct {
	// Wait bounds how long the publish may wait for room while
	// subscribers that are reading are behind; 0 waits as long as the
	// context allows. A bound here rather than a context deadline costs
	// no timer for the publishes that find room at once.
	Wait time.Duration
	// IdempotencyKey, when not empty, names the publish: a publish with a
	// key the hub has seen within its key window publishes nothing and
	// is answered with the original results.
	IdempotencyKey string
}

// PublishOutcome is what became of a publish.
type PublishOutcome struct {
	Results []PublishResult
	// Replayed is true when the IdempotencyKey was seen before: Results
	// are the original ones and nothing was published now.
	Replayed bool
}

// ErrOverloaded is returned when subscribers are too far behind to take a
// publish within its wait: nothing was published; the publisher may retry.
var ErrOverloaded = errors.New("subscribers are behind; publish again shortly")

// ErrOutcomeUnknown wraps failures after a publish was sent to a shared
// engine but before it answered: it may or may not have been published.
var ErrOutcomeUnknown = errors.New("publish outcome unknown")

// ErrEngineUnavailable wraps failures to reach a shared engine (Redis):
// nothing was published, and the publisher may retry.
var ErrEngineUnavailable = errors.New("event engine unavailable")

// Interface guards
var (
	_ Engine = (*Hub)(nil)
)

// DefaultHubName is the hub of a route that names none.
const DefaultHubName = "default"

// ValidHubName accepts 1-64 characters from A-Z a-z 0-9 . _ ~ @ -: a hub's
// name is part of its Redis keys, where ':' and '#' separate the parts.
func ValidHubName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("hub name %q must be 1-64 characters", Truncate(name, 64))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == ':' || c == '/' || !isTopicChar(c) {
			return fmt.Errorf("hub name %q has a character outside A-Z a-z 0-9 . _ ~ @ -", Truncate(name, 64))
		}
	}
	return nil
}
