package mercure

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/redishub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Mercure's Active Subscriptions (spec "Active Subscriptions"), when the
// handler's `subscriptions` option is on:
//
//   - Subscription events: a private update each time a subscription
//     becomes active or ends, published through the hub's engine like any
//     update, into a hub topic of their own (MercureSubscriptionsTopic),
//     so that every instance sharing the hub delivers it. Their topics and
//     documents are the modern (1.0) or the 0.x ones by the handler's mode
//     (subscriptions_shapes.go).
//   - The subscriptions API (subscriptions_api.go), from a registry
//     of the active subscriptions: in process for the memory engine, in
//     Redis for the Redis engine (subscriptions_redis.go).
//
// A subscription is one matcher of one connection: a connection with three
// matchers holds three. Its subscriber is a random urn:uuid the hub draws
// per connection, never the token's sub: one token on two connections (two
// tabs) is two subscribers whose events must not collide, the sub would be
// disclosed to every watcher, and a client must not be able to choose the
// identity its events carry (spec "Subscriber Identifier Assignment").

// Defaults of the subscriptions feature.
const (
	// DefaultMercureSubscriptionsTTL: with Redis, how long an instance that
	// stopped refreshing (crashed) keeps its subscriptions listed; they are
	// then removed, with active:false events.
	DefaultMercureSubscriptionsTTL = 30 * time.Second
	// mercureSubsPublishTimeout bounds the publish of one connection's
	// events and the registry's Redis calls: past it, the events are
	// dropped (logged), the stream goes on.
	mercureSubsPublishTimeout = 2 * time.Second
	// mercureSubsPublishWait bounds the wait for room when subscribers are
	// behind: an overloaded hub drops subscription events rather than hold
	// a connecting stream.
	mercureSubsPublishWait = 100 * time.Millisecond
)

// mercureSub is one active subscription as the registry holds it, in
// neither generation's shape (the shapes render it): the registry is the
// hub's, shared by routes in either mode and, with Redis, by instances.
// The short JSON names keep the Redis documents small.
type mercureSub struct {
	// HubPath is the path of the hub URL the subscriber connected to:
	// the topics of its events start with it.
	HubPath string `json:"h,omitempty"`
	// MatchType is subsMatchExact, subsMatchURLPattern or
	// subsMatchURITemplate.
	MatchType  string          `json:"t"`
	Match      string          `json:"m"`
	Subscriber string          `json:"s"`
	Payload    json.RawMessage `json:"p,omitempty"`
}

// key identifies the subscription in the registry: its modern topic, which
// names all of its parts.
func (s mercureSub) key() string { return subsModern.topic(s) }

// subsMatchType is the matcher type a subscription reports for a compiled
// matcher. A 0.x `topic=` selector without an expression selects itself
// only: it is an exact matcher.
func subsMatchType(m *MercureMatcher) string {
	switch {
	case m.typ == MercureURLPattern:
		return subsMatchURLPattern
	case m.typ == MercureTopicSelector && m.kind == matchTemplate:
		return subsMatchURITemplate
	}
	return subsMatchExact
}

// newSubscriberID is a subscriber's identifier: a random UUID (RFC 9562
// version 4) as a URN, drawn per connection.
func newSubscriberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// connectionSubscriptions lists the subscriptions of one connection to the
// hub at hubPath: one per distinct matcher, all with one fresh subscriber
// id. private are the token's compiled subscribe matchers, in the grant's
// order (nil without a token): the payload of each subscription is the
// one of the first subscribe detail whose topics match the subscription's
// own matcher string, read as a topic (spec "Payloads").
func connectionSubscriptions(hubPath string, subscribed, private []*MercureMatcher, grant *MercureGrant) []mercureSub {
	subscriber := newSubscriberID()
	subs := make([]mercureSub, 0, len(subscribed))
	seen := make(map[string]bool, len(subscribed))
	for _, sel := range subscribed {
		var payload json.RawMessage
		if grant != nil {
			i := 0
			payload = grant.SubscriptionPayload(func(MercureGrantTopic) bool {
				ok := i < len(private) && private[i].Match(sel.value)
				i++
				return ok
			})
			if isJSONNull(payload) {
				payload = nil
			}
		}
		s := mercureSub{HubPath: hubPath, MatchType: subsMatchType(sel), Match: sel.value, Subscriber: subscriber, Payload: payload}
		if k := s.key(); !seen[k] {
			seen[k] = true
			subs = append(subs, s)
		}
	}
	return subs
}

// mercureSubsRegistry holds the hub's active subscriptions. join and leave
// count a connection's subscriptions in and out and return those that
// became active, or ended; failures are the registry's to log and repair.
type mercureSubsRegistry interface {
	join(ctx context.Context, subs []mercureSub) []mercureSub
	leave(ctx context.Context, subs []mercureSub) []mercureSub
	// list returns every active subscription, in no order.
	list(ctx context.Context) ([]mercureSub, error)
	// setNotify sets what publishes the events of changes the registry
	// finds by itself (an instance's subscriptions expiring).
	setNotify(func(subs []mercureSub, active bool))
	caddy.Destructor
}

// registries are pooled by engine: they outlive a reload, as the hub does.
var subsRegistries = caddy.NewUsagePool()

// MercureSubscriptionsTopic is the hub topic of the subscription events:
// a ring of its own, with the Mercure topic's replay settings, so that a
// flood of connections cannot push the updates out of the replay ring.
// Every subscriber of an sse_mercure route with subscriptions reads both
// topics, in id order.
const MercureSubscriptionsTopic = "~mercure-subscriptions"

// setupSubscriptions declares the events' topic and finds (or makes) the
// hub's registry.
func (m *Handler) setupSubscriptions(app stream.Hubs, table *hub.TopicTable, ring hub.RingConfig) error {
	if !m.Subscriptions {
		return nil
	}
	if err := app.Declare(m.Hub, table, []hub.TopicDecl{{Name: MercureSubscriptionsTopic, Ring: ring}}); err != nil {
		return fmt.Errorf("sse_mercure: %v (every sse_mercure route of a hub must have the same replay settings)", err)
	}
	ref, ok := table.Lookup(MercureSubscriptionsTopic)
	if !ok {
		return fmt.Errorf("sse_mercure: the subscriptions topic was not declared") // cannot happen
	}
	m.subsRef = ref
	ttl := time.Duration(m.SubscriptionsTTL)
	if ttl == 0 {
		ttl = DefaultMercureSubscriptionsTTL
	}
	v, _, err := subsRegistries.LoadOrNew(m.hub, func() (caddy.Destructor, error) {
		if rh, ok := m.hub.(*redishub.RedisHub); ok {
			return newRedisSubsRegistry(rh, ttl, m.logger), nil
		}
		return newMemorySubsRegistry(), nil
	})
	if err != nil {
		return err
	}
	m.subs = v.(mercureSubsRegistry)
	m.subs.setNotify(m.publishSubscriptionEvents)
	return nil
}

// releaseSubscriptions gives the registry back to the pool.
func (m *Handler) releaseSubscriptions() {
	if m.subs == nil {
		return
	}
	if _, err := subsRegistries.Delete(m.hub); err != nil {
		m.logger.Error("releasing the subscriptions registry", zap.Error(err))
	}
	m.subs = nil
}

// subscriptionsJoin records a connection's subscriptions and publishes the
// events of those that became active; what it returns records their end.
// It runs before the stream starts, bounded by mercureSubsPublishTimeout:
// once the subscriber reads the stream's first bytes, it is listed.
func (m *Handler) subscriptionsJoin(r *http.Request, subscribed, private []*MercureMatcher, grant *MercureGrant) (leave func()) {
	reg := m.subs
	if reg == nil {
		return func() {}
	}
	hubPath := m.hubBaseURL(r).Path
	if hubPath == "" {
		hubPath = "/"
	}
	subs := connectionSubscriptions(hubPath, subscribed, private, grant)
	ctx, cancel := context.WithTimeout(context.Background(), mercureSubsPublishTimeout)
	m.publishSubscriptionEvents(reg.join(ctx, subs), true)
	cancel()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), mercureSubsPublishTimeout)
		defer cancel()
		m.publishSubscriptionEvents(reg.leave(ctx, subs), false)
	}
}

// publishSubscriptionEvents publishes one private update per subscription,
// in one batch, through the engine: on Redis every instance delivers it.
// The registry changed first, so an API answer's cursor never hides an
// event a client would need. A refused publish (overload, Redis down) is
// logged and dropped.
func (m *Handler) publishSubscriptionEvents(subs []mercureSub, active bool) {
	if len(subs) == 0 {
		return
	}
	sh := m.eventShape()
	pubs := make([]hub.Publication, 0, len(subs))
	for _, s := range subs {
		data, _ := json.Marshal(sh.doc(s, active, true, ""))
		meta, _ := json.Marshal(mercureMeta{Topics: []string{sh.topic(s)}, Private: true})
		pubs = append(pubs, hub.Publication{
			Message: &hub.Message{Topics: []string{MercureSubscriptionsTopic}, Name: sh.eventType(), Data: string(data),
				Meta: string(meta), HashID: true},
			Topics: []hub.TopicRef{m.subsRef},
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), mercureSubsPublishTimeout)
	defer cancel()
	if _, err := m.hub.Publish(ctx, pubs, hub.PublishOptions{Wait: mercureSubsPublishWait}); err != nil {
		if ok, suppressed := m.subsLog.Allow("publish"); ok {
			m.logger.Warn("subscription events dropped", zap.Int("events", len(pubs)), zap.Bool("active", active),
				zap.Error(err), zap.Int("suppressed", suppressed))
		}
	}
}

// mercureLastEventID is the id of the last event the hub dispatched, as a
// resume point ("#<epoch>-<seq>"), or "earliest" before the first.
func mercureLastEventID(engine hub.Engine) string {
	st := engine.Stats()
	if st.LastSeq == 0 {
		return "earliest"
	}
	return "#" + st.LastID
}

// isSubscriptionsRequest reports a request for the subscriptions API.
func isSubscriptionsRequest(r *http.Request) bool {
	_, _, ok := splitSubscriptionsPath(r.URL.EscapedPath())
	return ok
}

// splitSubscriptionsPath splits an API path, <hub path>/subscriptions[/…],
// at its first "subscriptions" segment: hub is the hub's path, rest what
// follows "/subscriptions" ("" or "/…"). The hub's path is the one the
// request reached, so a hub served elsewhere than /.well-known/mercure
// serves its API under its own path (one with a "subscriptions" segment
// of its own cannot).
func splitSubscriptionsPath(escaped string) (hubName, rest string, ok bool) {
	const seg = "/subscriptions"
	for off := 0; ; {
		i := strings.Index(escaped[off:], seg)
		if i < 0 {
			return "", "", false
		}
		i += off
		end := i + len(seg)
		if end == len(escaped) || escaped[end] == '/' {
			return escaped[:i], escaped[end:], true
		}
		off = end
	}
}
