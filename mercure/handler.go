package mercure

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/logthrottle"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(new(Handler))
}

// MercureTopic is the hub topic that holds every update of the sse_mercure
// handlers of a hub. Mercure topics are arbitrary strings (IRIs) that no
// configuration declares, so they cannot be hub topics: the updates go,
// in publication order, into this one topic, and each carries its Mercure
// topics and private flag in the event's metadata, from which every
// subscriber's filter decides. Topic names starting with "~" are reserved
// for such internal topics: no sse handler may declare one, so no plain
// event stream can read the private updates.
const MercureTopic = "~mercure"

// Defaults of the sse_mercure handler.
const (
	DefaultMercureMaxBody        = 1 << 20
	DefaultMercureMaxTopics      = 1000 // Mercure's
	DefaultMercureMaxTopicLength = 0    // no cap but max_body's, as Mercure
	// DefaultMercurePredecessorScan, as SubscribeOptions.Predecessor,
	// asks for the response's Mercure-Last-Event-ID. Only its being
	// positive counts now: the answer is the resume point itself when
	// found (internal/hub/replay.go, PredecessorOf), no scan.
	DefaultMercurePredecessorScan = 1000
)

// Handler serves the Mercure protocol on one URL: POST publishes an
// update, GET (and HEAD) subscribes. Its updates live in the hub named by
// Hub, memory or Redis like every hub, so with Redis several Caddy
// instances form one Mercure hub.
type Handler struct {
	// The token configuration: issuers and their keys, the resource
	// identifier, cookie name, publish origins and limits (jwt.go).
	MercureAuthConfig

	// ProtocolVersionCompatibility is Mercure's own option: 0 (the
	// default) serves the current protocol (Mercure 1.0, "modern mode");
	// 8 also accepts what Mercure 0.x hubs (v0.24.2) accept, so 0.x apps
	// keep working during their migration ("compatibility mode": topic=
	// URI templates, the mercure claim, tokens without typ/aud/exp, the
	// authorization query parameter, the mercureAuthorization cookie, the
	// 0.x subscription shapes). No other value is valid.
	ProtocolVersionCompatibility int `json:"protocol_version_compatibility,omitempty"`

	// Anonymous lets subscribers without a token in: they receive public
	// updates. Default: a token is required to subscribe.
	Anonymous bool `json:"anonymous,omitempty"`
	// Hub holds the updates. Default: "default".
	Hub string `json:"hub,omitempty"`
	// Origins whose pages may subscribe and publish with credentials
	// (cookies), as the sse handler's option: scheme://host[:port], or
	// "*". Others get 403. Publishing with a cookie also needs the origin
	// in PublishOrigins (cors.go). Default: none, no CORS headers.
	Origins []string `json:"origins,omitempty"`
	// Subscriptions turns on subscription events and the subscriptions
	// API (subscriptions.go).
	Subscriptions bool `json:"subscriptions,omitempty"`
	// SubscriptionsTTL: with Redis, how long the subscriptions of an
	// instance that stopped (crashed) stay listed. Default: 30s.
	SubscriptionsTTL caddy.Duration `json:"subscriptions_ttl,omitempty"`
	// MaxTopics is how many topic fields one update may carry (the
	// canonical one and its alternates); beyond it the publish is refused
	// with 413, as the spec says of limits. All updates share one ring, so
	// nothing else is held per topic. Default: 1000, as Mercure.
	MaxTopics int `json:"max_topics,omitempty"`
	// MaxTopicLength bounds each topic of an update, in bytes (413 beyond
	// it). Default: 0, no cap but MaxBody's (as Mercure).
	MaxTopicLength int `json:"max_topic_length,omitempty"`
	// MaxBody bounds a publish request's body (413 beyond it). Default:
	// 1MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// Updates kept for resuming subscribers, all topics together; 0 keeps
	// none. Default: 1000.
	Replay *int `json:"replay,omitempty"`
	// Bytes kept. Default: 4MiB.
	ReplaySize int64 `json:"replay_size,omitempty"`
	// Updates older than this are dropped. Default: kept until evicted.
	ReplayAge caddy.Duration `json:"replay_age,omitempty"`

	// A comment is sent after this much silence; 0 disables it.
	// Default: 15s.
	Heartbeat *caddy.Duration `json:"heartbeat,omitempty"`
	// A stream making no progress this long (its client taking no bytes)
	// drops the subscriber; one long write to a client that keeps reading
	// does not. Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// Updates waiting per subscriber. Default: 256.
	Queue int `json:"queue,omitempty"`
	// Open streams on this route; beyond it a subscriber is told to come
	// back later (200 with a jittered retry:, as for sse). Default: no
	// limit.
	MaxSubscribers int `json:"max_subscribers,omitempty"`

	// --- Subscribe side: matchers and their cost (subscribe.go,
	// selectors*.go). Zero values take the defaults.

	// MaxMatchers bounds the matcher parameters of one subscribe request
	// (400 beyond). Default: 100.
	MaxMatchers int `json:"max_matchers,omitempty"`
	// MaxMatcherLength bounds each matcher of a request, in bytes (400
	// beyond). Default: 4096.
	MaxMatcherLength int `json:"max_matcher_length,omitempty"`
	// MaxPatternCost bounds the estimated compile cost of one URL pattern
	// (the regexp instructions its groups expand to; 400 beyond).
	// Default: 4096.
	MaxPatternCost int `json:"max_pattern_cost,omitempty"`
	// PatternBudget bounds the estimated compile cost of one subscriber's
	// patterns together (400 beyond). Default: 16384.
	PatternBudget int `json:"pattern_budget,omitempty"`
	// PatternCacheSize bounds, in estimated bytes, the compiled patterns
	// kept for sharing between subscribers. Default: 32MiB.
	PatternCacheSize int64 `json:"pattern_cache_size,omitempty"`
	// --- end of the subscribe side's options

	auth       *MercureAuth
	querySels  *MercureSelectors  // subscribers' query selectors; deciders
	tokenSels  *MercureSelectors  // tokens' selectors, with the token limits
	cors       *stream.CORSPolicy // nil without origins
	hub        hub.Engine
	ref        hub.TopicRef
	streamer   *stream.Streamer // writes the streams, like the sse handler's (internal/stream)
	logger     *zap.Logger
	refusalLog logthrottle.Throttle
	subs       mercureSubsRegistry // nil without the subscriptions option
	subsRef    hub.TopicRef        // the hub topic of the subscription events
	subsLog    logthrottle.Throttle
	// reservedBase: the last hub URL's parse for the reserved-namespace
	// test (reserved.go).
	reservedBase atomic.Pointer[mercureReservedBase]
	// derived: the last resource identifier derived from a request
	// (metadata.go).
	derived atomic.Pointer[derivedResource]
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sse_mercure", New: func() caddy.Module { return new(Handler) }}
}

// Provision checks the settings, builds the token verifiers and declares
// the hub's Mercure topic.
func (m *Handler) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	if m.Hub == "" {
		m.Hub = hub.DefaultHubName
	}
	if m.MaxTopics == 0 {
		m.MaxTopics = DefaultMercureMaxTopics
	}
	if m.MaxTopicLength == 0 {
		m.MaxTopicLength = DefaultMercureMaxTopicLength
	}
	if m.MaxBody == 0 {
		m.MaxBody = DefaultMercureMaxBody
	}
	if m.Queue == 0 {
		m.Queue = stream.DefaultQueue
	}
	if m.WriteTimeout == 0 {
		m.WriteTimeout = caddy.Duration(stream.DefaultWriteTimeout)
	}
	if err := m.validate(); err != nil {
		return err
	}
	if err := m.validateMatcherLimits(); err != nil {
		return err
	}
	ring, err := m.ring()
	if err != nil {
		return err
	}
	m.MercureAuthConfig.compat = m.compat()
	auth, err := NewMercureAuth(ctx, m.MercureAuthConfig, m.logger)
	if err != nil {
		return fmt.Errorf("sse_mercure: %v", err)
	}
	m.auth = auth
	if m.cors, err = m.corsPolicy(); err != nil {
		return fmt.Errorf("sse_mercure: %v", err)
	}
	// A token's matchers are bounded when it is verified (grant.go);
	// the compiler takes what a verified token may carry, with the pattern
	// cost bounds; a request's own matchers take the subscribe limits.
	m.querySels = NewMercureSelectors(m.patternLimits(MercureSelectorConfig{MaxLength: m.MaxMatcherLength, MaxSelectors: m.MaxMatchers}, false))
	limits := m.MercureAuthConfig.claimLimits()
	m.tokenSels = NewMercureSelectors(m.patternLimits(MercureSelectorConfig{
		MaxLength:    limits.maxLength,
		MaxSelectors: limits.maxSelectors,
	}, true))

	app, err := stream.HubsFrom(ctx)
	if err != nil {
		return err
	}
	engine, table, err := app.Hub(m.Hub)
	if err != nil {
		return err
	}
	m.hub = engine
	// Declared like an sse handler's topic: the ring is kept across
	// reloads that keep the route, and pruned once none declares it.
	if err := app.Declare(m.Hub, table, []hub.TopicDecl{{Name: MercureTopic, Ring: ring}}); err != nil {
		return fmt.Errorf("sse_mercure: %v (every sse_mercure route of a hub must have the same replay settings)", err)
	}
	ref, ok := table.Lookup(MercureTopic)
	if !ok {
		return errors.New("sse_mercure: the Mercure topic was not declared") // cannot happen
	}
	m.ref = ref
	if err := m.setupSubscriptions(app, table, ring); err != nil {
		return err
	}

	heartbeat := stream.DefaultHeartbeat
	if m.Heartbeat != nil {
		heartbeat = time.Duration(*m.Heartbeat)
	}
	m.streamer = &stream.Streamer{
		QueueSize:      stream.DefaultQueueSize,
		WriteTimeout:   time.Duration(m.WriteTimeout),
		Heartbeat:      heartbeat,
		Coalesce:       stream.DefaultCoalesce,
		MaxSubscribers: m.MaxSubscribers,
		NoReset:        true, // Mercure clients expect no "reset" event
		Stopping:       app.Stopping(),
		Logger:         m.logger,
	}
	m.logger.Info("sse_mercure handler ready",
		zap.String("hub", m.Hub),
		zap.Bool("publisher_tokens", m.auth.Publisher != nil),
		zap.Bool("subscriber_tokens", m.auth.Subscriber != nil),
		zap.Bool("compatibility_mode", m.compat()),
		zap.String("resource_identifier", orDerived(m.auth.resource)),
		zap.Bool("anonymous", m.Anonymous),
		zap.Bool("subscriptions", m.Subscriptions),
		zap.Int("replay", ring.Replay),
		zap.String("max_body", humanize.IBytes(uint64(m.MaxBody))))
	return nil
}

func orDerived(s string) string {
	if s == "" {
		return "derived from each request"
	}
	return s
}

// compat reports compatibility mode (protocol_version_compatibility 8):
// the 0.x behaviours are accepted besides the current protocol's.
func (m *Handler) compat() bool { return m.ProtocolVersionCompatibility == 8 }

// validate checks the settings Provision needs sane before using them.
func (m *Handler) validate() error {
	switch {
	case m.ProtocolVersionCompatibility != 0 && m.ProtocolVersionCompatibility != 8:
		return fmt.Errorf("sse_mercure: protocol_version_compatibility must be 8 (Mercure 0.x clients) or absent, not %d", m.ProtocolVersionCompatibility)
	case m.SubscriptionsTTL < 0:
		return errors.New("sse_mercure: subscriptions_ttl must not be negative")
	case !m.HasPublisherKey():
		return errNoPublisherKey
	case m.MaxTopics < 0:
		return errors.New("sse_mercure: max_topics must not be negative")
	case m.MaxTopicLength < 0:
		return errors.New("sse_mercure: max_topic_length must not be negative")
	case m.MaxBody < 0 || m.MaxBody > hub.MaxSize:
		return errors.New("sse_mercure: max_body must not be negative or over 1TiB")
	case m.Queue < 0:
		return errors.New("sse_mercure: queue must not be negative")
	case m.WriteTimeout < 0:
		return errors.New("sse_mercure: write_timeout must not be negative")
	case m.Heartbeat != nil && *m.Heartbeat < 0:
		return errors.New("sse_mercure: heartbeat must not be negative")
	}
	return nil
}

// ring is the Mercure topic's ring, from the replay settings.
func (m *Handler) ring() (hub.RingConfig, error) {
	ring, err := hub.NewRingConfig(m.Replay, m.ReplaySize, time.Duration(m.ReplayAge), 0)
	if err != nil {
		return hub.RingConfig{}, fmt.Errorf("sse_mercure: %v", err)
	}
	return ring, nil
}

// Cleanup stops the key set's refresh and releases the subscriptions
// registry.
func (m *Handler) Cleanup() error {
	m.releaseSubscriptions()
	if m.auth != nil {
		m.auth.Close()
	}
	return nil
}

// mercureMeta is what an update's event carries for the subscribers'
// filters: its Mercure topics (canonical first) and whether it is private.
type mercureMeta struct {
	Topics  []string `json:"t"`
	Private bool     `json:"p,omitempty"`

	memo *mercureMetaMemo // decisions of the first deciders asked (meta.go)
}

// decodeMercureMeta reads an event's metadata, once per event
// (Event.Decoded). An event without valid metadata (none should exist in
// the Mercure topic) decodes to nil and reaches no subscriber.
func decodeMercureMeta(meta string) any {
	m, ok := decodeMercureMetaPlain(meta) // meta.go
	if !ok && (meta == "" || json.Unmarshal([]byte(meta), &m) != nil) || len(m.Topics) == 0 {
		return (*mercureMeta)(nil)
	}
	m.memo = new(mercureMetaMemo)
	return &m
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
