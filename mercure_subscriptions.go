package caddysse

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Mercure's Active Subscriptions (draft-08, "Active Subscriptions"), when
// the handler's `subscriptions` option is on:
//
//   - Subscription events: a private update each time a subscription
//     becomes active or ends, with the topic
//     /.well-known/mercure/subscriptions/{matchType}/{match}/{subscriber}
//     (and, as an alternate topic, the 0.x form
//     /.well-known/mercure/subscriptions/{topic}/{subscriber}), published
//     through the hub's engine like any update, into a hub topic of their
//     own (MercureSubscriptionsTopic), so that every instance sharing the
//     hub delivers it.
//   - The subscriptions API (mercure_subscriptions_api.go), from a registry
//     of the active subscriptions: in process for the memory engine, in
//     Redis for the Redis engine (mercure_subscriptions_redis.go).
//
// A subscription is one selector of one subscriber: a connection with
// three selectors holds three. Its subscriber is the token's sub, else a
// random urn:uuid per connection. The same sub connected twice with the
// same selector holds the same subscription: it is counted, active from
// the first connection to the end of the last, so the API lists it once
// and the events come in balanced pairs.

// mercureSubscriptionsPath is the fixed path of the subscription topics and
// of the web API (draft-08 fixes the hub's path to /.well-known/mercure).
const mercureSubscriptionsPath = "/.well-known/mercure/subscriptions"

// mercureContext is the fixed JSON-LD context of the documents.
const mercureContext = "https://mercure.rocks/"

// mercureURITemplate is the matchType of a 0.x `topic=` selector that is an
// RFC 6570 URI template: draft-08 has no such matcher type, so it is named
// here (a 0.x selector without an expression selects itself only and is
// reported as Exact, which is what it is).
const mercureURITemplate = "URITemplate"

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

// mercureSub is one subscription, as its JSON-LD document.
type mercureSub struct {
	Context    string          `json:"@context,omitempty"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	MatchType  string          `json:"matchType"`
	Match      string          `json:"match"`
	Topic      string          `json:"topic"` // the 0.x property: the selector
	Subscriber string          `json:"subscriber"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	// LastEventID is set on the API's single-subscription answer only.
	LastEventID string `json:"lastEventID,omitempty"`
}

func newMercureSub(matchType, match, subscriber string, payload json.RawMessage) mercureSub {
	return mercureSub{
		ID:         mercureSubscriptionTopic(matchType, match, subscriber),
		Type:       "Subscription",
		MatchType:  matchType,
		Match:      match,
		Topic:      match,
		Subscriber: subscriber,
		Active:     true,
		Payload:    payload,
	}
}

// legacyTopic is the 0.x topic of the subscription's events.
func (s mercureSub) legacyTopic() string {
	return mercureSubscriptionsPath + "/" + expandURIVar(s.Match) + "/" + expandURIVar(s.Subscriber)
}

// mercureSubscriptionTopic expands
// /.well-known/mercure/subscriptions/{matchType}/{match}/{subscriber}.
func mercureSubscriptionTopic(matchType, match, subscriber string) string {
	return mercureSubscriptionsPath + "/" + expandURIVar(matchType) + "/" + expandURIVar(match) + "/" + expandURIVar(subscriber)
}

// expandURIVar is RFC 6570 simple string expansion of one value: every
// byte outside the unreserved set (ALPHA DIGIT - . _ ~) is percent-encoded,
// '%' included, so an already encoded value is encoded once more, as a
// whole, exactly once (draft-08).
func expandURIVar(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// mercureMatchTypeName is the matchType a subscription reports for a
// compiled selector.
func mercureMatchTypeName(m *MercureMatcher) string {
	if m.typ == MercureTopicSelector {
		if m.kind == matchTemplate {
			return mercureURITemplate
		}
		return MercureExact.String()
	}
	return m.typ.String()
}

// newSubscriberID is the identifier of a subscriber without a sub claim.
func newSubscriberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// connectionSubscriptions lists the subscriptions of one connection: one
// per distinct selector. private are the token's compiled subscribe
// selectors, in the grant's order (nil without a token).
func connectionSubscriptions(subscribed, private []*MercureMatcher, grant *MercureGrant) []mercureSub {
	subscriber := ""
	if grant != nil {
		subscriber = grant.Subject
	}
	if subscriber == "" {
		subscriber = newSubscriberID()
	}
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
		}
		s := newMercureSub(mercureMatchTypeName(sel), sel.value, subscriber, payload)
		if seen[s.ID] {
			continue
		}
		seen[s.ID] = true
		subs = append(subs, s)
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
func (m *MercureHandler) setupSubscriptions(app *App, table *TopicTable, ring RingConfig) error {
	if !m.Subscriptions {
		return nil
	}
	if err := app.declare(m.Hub, table, []TopicDecl{{Name: MercureSubscriptionsTopic, Ring: ring}}); err != nil {
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
		if rh, ok := m.hub.(*RedisHub); ok {
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
func (m *MercureHandler) releaseSubscriptions() {
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
func (m *MercureHandler) subscriptionsJoin(subscribed, private []*MercureMatcher, grant *MercureGrant) (leave func()) {
	reg := m.subs
	if reg == nil {
		return func() {}
	}
	subs := connectionSubscriptions(subscribed, private, grant)
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
// The registry changed first, so an API answer's lastEventID never hides
// an event a client would need. A refused publish (overload, Redis down)
// is logged and dropped.
func (m *MercureHandler) publishSubscriptionEvents(subs []mercureSub, active bool) {
	if len(subs) == 0 {
		return
	}
	pubs := make([]Publication, 0, len(subs))
	for _, s := range subs {
		s.Context, s.Active, s.LastEventID = mercureContext, active, ""
		data, _ := json.Marshal(s)
		meta, _ := json.Marshal(mercureMeta{Topics: []string{s.ID, s.legacyTopic()}, Private: true})
		pubs = append(pubs, Publication{
			Message: &Message{Topics: []string{MercureSubscriptionsTopic}, Data: string(data), Meta: string(meta), HashID: true},
			Topics:  []TopicRef{m.subsRef},
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), mercureSubsPublishTimeout)
	defer cancel()
	if _, err := m.hub.Publish(ctx, pubs, PublishOptions{Wait: mercureSubsPublishWait}); err != nil {
		if ok, suppressed := m.subsLog.allow("publish"); ok {
			m.logger.Warn("subscription events dropped", zap.Int("events", len(pubs)), zap.Bool("active", active),
				zap.Error(err), zap.Int("suppressed", suppressed))
		}
	}
}

// mercureLastEventID is the id of the last event the hub dispatched, as a
// resume point ("#<epoch>-<seq>"), or "earliest" before the first.
func mercureLastEventID(hub Engine) string {
	st := hub.Stats()
	if st.LastSeq == 0 {
		return "earliest"
	}
	return "#" + st.LastID
}

// isSubscriptionsRequest reports a request for the subscriptions API.
func isSubscriptionsRequest(r *http.Request) bool {
	p := r.URL.EscapedPath()
	return p == mercureSubscriptionsPath || strings.HasPrefix(p, mercureSubscriptionsPath+"/")
}
