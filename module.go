package caddysse

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/logthrottle"
	"github.com/ssehub/caddy-sse/internal/redishub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(SSEHandler))
	caddy.RegisterModule(new(PublishHandler))
}

// hubs outlive configurations: a reload provisions a new App that picks up
// the same hubs (ring buffers included) from this pool by name.
var hubs = caddy.NewUsagePool()

// pooledHub lets an Engine live in a caddy.UsagePool without the hub core
// knowing about Caddy.
type pooledHub struct {
	hub.Engine
	name string
}

func (p pooledHub) Destruct() error { return p.Close() }

// App is the "sse" app: one per loaded configuration. Handlers of the
// configuration declare their topics to it while they are provisioned; it
// holds the hubs they share and closes their open streams when the
// configuration stops, so Caddy never waits on an event stream to end.
type App struct {
	// Redis, when set, holds every hub of this configuration, shared with
	// every Caddy instance using the same Redis and prefix. Default: hubs
	// live in this process's memory.
	Redis *redishub.RedisConfig `json:"redis,omitempty"`
	// How long a publish's Idempotency-Key is remembered, per hub (with
	// Redis, in Redis). Default: 10m.
	IdempotencyWindow caddy.Duration `json:"idempotency_window,omitempty"`
	// Most Idempotency-Keys remembered per hub; beyond it the oldest are
	// forgotten. Default: 100000.
	IdempotencyKeys int `json:"idempotency_keys,omitempty"`

	mu       sync.Mutex
	hubs     map[string]hub.Engine
	tables   map[string]*hub.TopicTable
	keys     map[string]string // pool key (may hold a Redis password) -> hub name
	declared int               // handlers declared, for naming places in JSON configs
	// Hubs that sse_publish handlers publish to, checked in Start for
	// topics once every handler has declared its own.
	publishedTo map[string]bool

	stopping chan struct{}
	stopOnce sync.Once
	checks   []func() error // run by Start, once every handler is provisioned

	logger  *zap.Logger
	ctx     context.Context // its cause tells Cleanup that caddy.Validate is done
	started bool
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "sse", New: func() caddy.Module { return new(App) }}
}

// Provision sets up the app.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.ctx = ctx
	a.hubs = make(map[string]hub.Engine)
	a.tables = make(map[string]*hub.TopicTable)
	// Made first: Cleanup closes it even when provisioning fails below.
	a.stopping = make(chan struct{})
	if a.IdempotencyWindow < 0 {
		return errors.New("sse: idempotency_window must not be negative")
	}
	if a.IdempotencyKeys < 0 {
		return errors.New("sse: idempotency_keys must not be negative")
	}
	if a.Redis != nil {
		// The URL may carry a password from the environment: {env.REDIS_URL}.
		a.Redis.URL = caddy.NewReplacer().ReplaceAll(a.Redis.URL, "")
		if a.Redis.URL == "" {
			return errors.New("sse: redis needs a URL (is the environment variable set?)")
		}
		if _, err := redishub.ParseRedisURL(a.Redis.URL); err != nil {
			return fmt.Errorf("sse: %v", err)
		}
		if a.Redis.Backlog < 0 {
			return errors.New("sse: redis backlog must not be negative")
		}
	}
	// Each configuration has a registry of its own: registering here never
	// collides with the previous configuration's collector.
	if err := registerMetrics(ctx.GetMetricsRegistry(), a); err != nil {
		return fmt.Errorf("sse: registering metrics: %v", err)
	}
	// Caddy emits "stopping" before it stops any app of a configuration,
	// on reload and on exit. Apps stop in no fixed order, and the HTTP
	// app's shutdown waits for open requests on every protocol, so this is
	// the signal that always comes in time to close our streams.
	ev, err := ctx.App("events")
	if err != nil {
		return err
	}
	if events, ok := ev.(*caddyevents.App); ok {
		if err := events.On("stopping", stoppingHandler{a}); err != nil {
			return err
		}
	}
	return nil
}

// stoppingHandler closes the app's streams when Caddy starts stopping it.
type stoppingHandler struct{ a *App }

func (h stoppingHandler) Handle(context.Context, caddy.Event) error {
	h.a.closeStreams()
	return nil
}

// Hub returns the named hub, taking it from the pool on first use by this
// configuration, together with this configuration's topic table for it.
// Hubs are pooled by engine as well as name: a reload that switches to
// Redis (or to another Redis) gets a new hub, one that keeps it the same
// gets the same hub, its open streams and rings untouched.
func (a *App) Hub(name string) (hub.Engine, *hub.TopicTable, error) {
	if err := hub.ValidHubName(name); err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if h, ok := a.hubs[name]; ok {
		return h, a.tables[name], nil
	}
	key := "memory/" + name
	if a.Redis != nil {
		key = fmt.Sprintf("redis/%s/%s/%d/%s", a.Redis.URL, a.Redis.Prefix, a.Redis.Backlog, name)
	}
	v, _, err := hubs.LoadOrNew(key, func() (caddy.Destructor, error) {
		if a.Redis != nil {
			rh, err := redishub.NewRedisHub(name, *a.Redis, a.logger)
			if err != nil {
				return nil, err
			}
			return pooledHub{rh, name}, nil
		}
		return pooledHub{hub.NewHub(), name}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	h := v.(pooledHub).Engine
	// A pooled hub outlives configurations: this one's settings apply now.
	if s, ok := h.(hub.IdempotencySetter); ok {
		window, keys := time.Duration(a.IdempotencyWindow), a.IdempotencyKeys
		if window == 0 {
			window = hub.DefaultIdempotencyWindow
		}
		if keys == 0 {
			keys = hub.DefaultIdempotencyKeys
		}
		s.SetIdempotency(window, keys)
	}
	a.hubs[name] = h
	a.tables[name] = hub.NewTopicTable()
	if a.keys == nil {
		a.keys = make(map[string]string)
	}
	a.keys[key] = name
	return h, a.tables[name], nil
}

// Declare adds a handler's topics to its hub's table, rejecting a topic
// declared elsewhere in this configuration with other settings.
func (a *App) Declare(hubName string, table *hub.TopicTable, decls []hub.TopicDecl) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.declared++
	names := make([]string, len(decls))
	for i, d := range decls {
		names[i] = d.Name
	}
	// Handlers are provisioned in no fixed order across servers, so the
	// number alone would not say which one is meant; the topics do.
	place := fmt.Sprintf("sse handler #%d (hub %q, topics %s)", a.declared, hubName, strings.Join(names, ", "))
	for _, d := range decls {
		if err := table.Add(d, place); err != nil {
			return err
		}
	}
	return nil
}

// afterProvision registers a check that needs every handler's topics
// declared (a presence topic may be declared by a later handler); Start
// runs it and fails the load on its error.
func (a *App) afterProvision(check func() error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, check)
}

// Start drops, from the pooled hubs, topics this configuration no longer
// declares and applies changed ring settings at once.
// It also warns of an sse_publish whose hub no sse handler declares a
// topic in: every publish to it would be refused (warnHubsWithoutTopics;
// `caddy validate` never starts the app, so Cleanup warns then).
func (a *App) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, check := range a.checks {
		if err := check(); err != nil {
			return err
		}
	}
	for name, h := range a.hubs {
		h.Prune(a.tables[name].Ring)
	}
	a.warnHubsWithoutTopics()
	a.started = true
	runningApp.Store(a) // the admin views show this configuration now
	return nil
}

// publisherOf records that an sse_publish handler publishes to the hub.
func (a *App) publisherOf(hubName string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.publishedTo == nil {
		a.publishedTo = make(map[string]bool)
	}
	a.publishedTo[hubName] = true
}

// Stop closes this configuration's open streams: on exit Caddy's HTTP app
// waits for requests to end, and an event stream never ends by itself.
func (a *App) Stop() error {
	a.closeStreams()
	return nil
}

// Cleanup releases the hubs; the last configuration using one destroys it.
func (a *App) Cleanup() error {
	a.closeStreams()
	runningApp.CompareAndSwap(a, nil)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started && validated(a.ctx) {
		a.warnHubsWithoutTopics()
	}
	for key, name := range a.keys {
		if _, err := hubs.Delete(key); err != nil {
			a.logger.Error("releasing hub", zap.String("hub", name), zap.Error(err))
		}
	}
	return nil
}

// Stopping is closed when Caddy starts stopping this configuration.
func (a *App) Stopping() <-chan struct{} { return a.stopping }

func (a *App) closeStreams() {
	a.stopOnce.Do(func() { close(a.stopping) })
}

// appFrom loads the configuration's sse app (Caddy creates and starts it
// even when the JSON config has no "sse" app).
func appFrom(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("sse")
	if err != nil {
		return nil, err
	}
	return v.(*App), nil
}

// TopicConfig declares one or more topics with the same ring settings.
type TopicConfig struct {
	// Topic names: literal ("news"), with "*" segments ("chat/*"), or
	// with placeholders resolved per subscriber ("user/{http.auth.user.id}").
	Names []string `json:"names"`
	// Events kept per topic for resuming subscribers; 0 keeps none.
	// Default: 1000.
	Replay *int `json:"replay,omitempty"`
	// Bytes kept per topic. Default: 4MiB.
	ReplaySize int64 `json:"replay_size,omitempty"`
	// Events older than this are dropped. Default: kept until evicted.
	ReplayAge caddy.Duration `json:"replay_age,omitempty"`
	// How many of the newest retained events a subscriber with no resume
	// point (no Last-Event-ID, no last_event_id) receives first, in id
	// order: the topic's current state. At most replay. Default: 0.
	ReplayOnConnect int `json:"replay_on_connect,omitempty"`
	// For names with "*" or placeholders: how many concrete topics are held
	// at once. Beyond it an idle one (no subscribers) is forgotten, least
	// recently used first; a subscriber's new topic never makes one that
	// holds history go, a publisher's may. When none may go, a subscriber
	// is asked to come back later and a publisher gets 429. Default: 10000.
	MaxTopics int `json:"max_topics,omitempty"`
}

func (tc TopicConfig) decls() ([]hub.TopicDecl, error) {
	if len(tc.Names) == 0 {
		return nil, errors.New("topic: no name given")
	}
	ring, err := hub.NewRingConfig(tc.Replay, tc.ReplaySize, time.Duration(tc.ReplayAge), tc.ReplayOnConnect)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %v", tc.Names[0], err)
	}
	maxTopics := tc.MaxTopics
	if maxTopics < 0 {
		return nil, fmt.Errorf("topic %s: max_topics must not be negative", tc.Names[0])
	}
	if maxTopics == 0 {
		maxTopics = hub.DefaultMaxTopics
	}
	var out []hub.TopicDecl
	literalOnly := true
	for _, n := range tc.Names {
		if err := hub.ValidateDeclName(n); err != nil {
			return nil, err
		}
		d := hub.TopicDecl{Name: n, Ring: ring}
		if !d.IsLiteral() {
			d.MaxTopics = maxTopics
			literalOnly = false
		}
		out = append(out, d)
	}
	if tc.MaxTopics != 0 && literalOnly {
		return nil, fmt.Errorf("topic %s: max_topics applies only to names with * segments or placeholders", tc.Names[0])
	}
	return out, nil
}

// Defaults of the sse handler (README, "Caddyfile").
const (
	DefaultMaxTopicsPerSubscriber = 64
)

// SSEHandler serves declared topics to EventSource clients.
type SSEHandler struct {
	// Hub isolates topics: handlers of different hubs share nothing.
	// Default: "default".
	Hub string `json:"hub,omitempty"`
	// Topics this route serves.
	Topics []TopicConfig `json:"topics,omitempty"`
	// A comment is sent after this much silence; 0 disables it.
	// Default: 15s.
	Heartbeat *caddy.Duration `json:"heartbeat,omitempty"`
	// Reconnect delay sent to clients in a retry field. Default: none
	// (the browser's own).
	Retry caddy.Duration `json:"retry,omitempty"`
	// Open streams this route serves at once; beyond it clients are asked
	// to come back later. Default: no limit.
	MaxSubscribers int `json:"max_subscribers,omitempty"`
	// Events waiting per subscriber. A full queue makes publishers wait
	// while the subscriber's socket takes bytes, and drops the subscriber
	// once it has stopped taking them. Default: 256.
	Queue int `json:"queue,omitempty"`
	// Bytes waiting per subscriber, bounded like Queue. Default: 1MiB.
	QueueSize int64 `json:"queue_size,omitempty"`
	// A write taking longer drops the subscriber. Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// How many ?topic= one request may name. Default: 64.
	MaxTopicsPerSubscriber int `json:"max_topics_per_subscriber,omitempty"`
	// A stream written less than this long ago waits out the rest before
	// writing again, gathering events into one write: busy streams cost
	// one syscall per window instead of one per event. 0 writes every
	// event at once. Default: 10ms.
	Coalesce *caddy.Duration `json:"coalesce,omitempty"`
	// A placeholder the app fills per request with the topics this
	// subscriber may have, separated by commas or spaces
	// ("{http.reverse_proxy.header.X-Sse-Topics}" inside reverse_proxy's
	// handle_response). Each must be a topic the route declares; the
	// subscriber gets the granted topics and no others (?topic= picks
	// among them). Missing, empty or not all declared: 403. Default: none
	// (the route's topics are served as declared).
	Grant string `json:"grant,omitempty"`
	// Origins whose pages may open this route's streams with
	// EventSource(url, {withCredentials: true}): scheme://host[:port], or
	// "*" for any origin ("null" only when listed). Others get 403.
	// Default: none, and no CORS headers (internal/stream/internal/stream/cors.go).
	Origins []string `json:"origins,omitempty"`
	// Presence publishes join and leave events of the route's topics to
	// a topic (presence.go). Default: none.
	Presence *PresenceConfig `json:"presence,omitempty"`

	app         *App
	hub         hub.Engine
	table       *hub.TopicTable
	literals    []string        // served when no ?topic= is given
	perRequest  []hub.TopicDecl // names with placeholders, resolved per request
	wildcards   [][]string      // '*' patterns a subscriber may pick from
	heartbeat   time.Duration
	coalesce    time.Duration
	streamer    *stream.Streamer // writes the streams (internal/stream)
	logger      *zap.Logger
	dropLog     logthrottle.Throttle // warnings for dropped and refused subscribers (logs.go)
	topicPlaces []string             // file:line of each Topics entry, when adapted from a Caddyfile
	cors        *stream.CORSPolicy
	presence    *presenceTracker
	presenceKey trackerKey
}

// CaddyModule returns the Caddy module information.
func (*SSEHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sse", New: func() caddy.Module { return new(SSEHandler) }}
}

// Provision declares the handler's topics and applies defaults.
func (h *SSEHandler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Hub == "" {
		h.Hub = hub.DefaultHubName
	}
	h.heartbeat = stream.DefaultHeartbeat
	if h.Heartbeat != nil {
		h.heartbeat = time.Duration(*h.Heartbeat)
	}
	h.coalesce = stream.DefaultCoalesce
	if h.Coalesce != nil {
		h.coalesce = time.Duration(*h.Coalesce)
	}
	if h.Queue == 0 {
		h.Queue = stream.DefaultQueue
	}
	if h.QueueSize == 0 {
		h.QueueSize = stream.DefaultQueueSize
	}
	if h.WriteTimeout == 0 {
		h.WriteTimeout = caddy.Duration(stream.DefaultWriteTimeout)
	}
	if h.MaxTopicsPerSubscriber == 0 {
		h.MaxTopicsPerSubscriber = DefaultMaxTopicsPerSubscriber
	}
	var decls []hub.TopicDecl
	for _, tc := range h.Topics {
		ds, err := tc.decls()
		if err != nil {
			return err
		}
		decls = append(decls, ds...)
	}
	if err := validateGrant(h.Grant, decls); err != nil {
		return fmt.Errorf("sse: %v", err)
	}
	for _, d := range decls {
		switch {
		case d.HasPlaceholder():
			h.perRequest = append(h.perRequest, d)
		case d.IsLiteral():
			h.literals = append(h.literals, d.Name)
		default:
			h.wildcards = append(h.wildcards, hub.PatternSegments(d.Name))
			if d.MaxTopics <= h.MaxTopicsPerSubscriber {
				// Held topics are never forgotten: one connection could
				// lock every new topic of the pattern out.
				h.logger.Warn("one subscriber may hold every topic of this pattern, leaving no room for new ones until it leaves; raise max_topics or lower max_topics_per_subscriber",
					zap.String("topic", d.Name), zap.Int("max_topics", d.MaxTopics),
					zap.Int("max_topics_per_subscriber", h.MaxTopicsPerSubscriber))
			}
		}
	}
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	h.app = app
	h.hub, h.table, err = app.Hub(h.Hub)
	if err != nil {
		return err
	}
	if h.cors, err = stream.NewCORSPolicy(h.Origins); err != nil {
		return fmt.Errorf("sse: %v", err)
	}
	if err := h.setupPresence(); err != nil {
		return err
	}
	if err := app.Declare(h.Hub, h.table, decls); err != nil {
		return err
	}
	h.streamer = &stream.Streamer{
		QueueSize:      h.QueueSize,
		WriteTimeout:   time.Duration(h.WriteTimeout),
		Retry:          time.Duration(h.Retry),
		Heartbeat:      h.heartbeat,
		Coalesce:       h.coalesce,
		MaxSubscribers: h.MaxSubscribers,
		Stopping:       app.stopping,
		Logger:         h.logger,
	}
	h.logger.Info("sse handler ready",
		zap.String("hub", h.Hub),
		zap.Strings("topics", describeTopics(decls)),
		zap.Stringer("heartbeat", h.heartbeat),
		zap.Int("max_subscribers", h.MaxSubscribers),
		zap.Int("queue", h.Queue),
		zap.String("queue_size", humanize.IBytes(uint64(h.QueueSize))),
		zap.Stringer("write_timeout", time.Duration(h.WriteTimeout)))
	return nil
}

// Cleanup releases what the handler took from pools.
func (h *SSEHandler) Cleanup() error {
	h.releasePresence()
	return nil
}

// Validate checks the handler's settings.
func (h *SSEHandler) Validate() error {
	switch {
	case len(h.Topics) == 0:
		return errors.New("sse: no topic declared")
	case h.heartbeat < 0:
		return errors.New("sse: heartbeat must not be negative")
	case h.coalesce < 0 || h.coalesce > time.Second:
		return errors.New("sse: coalesce must be between 0 and 1s")
	case h.Retry < 0:
		return errors.New("sse: retry must not be negative")
	case h.MaxSubscribers < 0:
		return errors.New("sse: max_subscribers must not be negative")
	case h.Queue < 0:
		return errors.New("sse: queue must not be negative")
	case h.QueueSize < 0 || h.QueueSize > hub.MaxSize:
		return errors.New("sse: queue_size must not be negative or over 1TiB")
	case h.WriteTimeout < 0:
		return errors.New("sse: write_timeout must not be negative")
	case h.MaxTopicsPerSubscriber < 0:
		return errors.New("sse: max_topics_per_subscriber must not be negative")
	}
	return nil
}

// Defaults of the sse_publish handler.
const (
	DefaultMaxBody           = 1 << 20
	DefaultMaxEvent          = 256 << 10
	DefaultStreamIdleTimeout = 5 * time.Minute
)

// DefaultMaxTopicsPerEvent caps the topics one published event names
// (README, "Publishing": 429 beyond it).
const DefaultMaxTopicsPerEvent = 64

// PublishHandler accepts events over HTTP POST and publishes them to the
// topics of its hub.
type PublishHandler struct {
	// Hub to publish to. Default: "default".
	Hub string `json:"hub,omitempty"`
	// Bearer tokens accepted (placeholders such as {env.X} are resolved
	// at load). A request carrying a wrong bearer token is refused.
	Tokens []string `json:"tokens,omitempty"`
	// Client addresses (IPs or CIDR ranges) allowed without a token; the
	// single value "none" allows none. Default: loopback only when no token
	// is configured, none once one is. A request that carries forwarding
	// headers (X-Forwarded-For, Forwarded, X-Real-IP, Via) but did not come
	// through one of the server's trusted_proxies is a relay whose client is
	// unknown: no range admits it but one that admits everyone (/0).
	// IPv4-mapped IPv6 ranges are read as their IPv4 ranges.
	AllowFrom []string `json:"allow_from,omitempty"`
	// Largest request body, except a held text/event-stream. Default: 1MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// Largest data of one event. Default: 256KiB.
	MaxEvent int64 `json:"max_event,omitempty"`
	// Time allowed to read a whole body (not a held event stream), so a
	// slow-dripping publisher cannot hold a request forever. Default: 30s.
	BodyTimeout caddy.Duration `json:"body_timeout,omitempty"`
	// Longest silence allowed inside a held text/event-stream body.
	// Default: 5m.
	StreamIdleTimeout caddy.Duration `json:"stream_idle_timeout,omitempty"`
	// How long a publish waits for room while subscribers that are
	// reading are behind (the machine cannot deliver as fast as
	// publishers publish); past it the answer is 503 with Retry-After and
	// nothing is published. Default: 5s.
	OverloadWait caddy.Duration `json:"overload_wait,omitempty"`
	// Distinct topics one event may name; beyond it the publish is refused
	// with 429 and nothing is published. It bounds the work (and the
	// pattern topics created) per event. Default: 64.
	MaxTopicsPerEvent int `json:"max_topics_per_event,omitempty"`

	tokens     [][]byte
	allowFrom  []netip.Prefix
	hub        hub.Engine
	table      *hub.TopicTable
	logger     *zap.Logger
	refusalLog logthrottle.Throttle // warnings for refused publishes (logs.go)
}

// CaddyModule returns the Caddy module information.
func (*PublishHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sse_publish", New: func() caddy.Module { return new(PublishHandler) }}
}

// Provision resolves tokens and address ranges and finds the hub.
func (p *PublishHandler) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	if p.Hub == "" {
		p.Hub = hub.DefaultHubName
	}
	if p.MaxBody == 0 {
		p.MaxBody = DefaultMaxBody
	}
	if p.MaxEvent == 0 {
		p.MaxEvent = DefaultMaxEvent
	}
	if p.BodyTimeout == 0 {
		p.BodyTimeout = caddy.Duration(stream.DefaultBodyTimeout)
	}
	if p.StreamIdleTimeout == 0 {
		p.StreamIdleTimeout = caddy.Duration(DefaultStreamIdleTimeout)
	}
	if p.OverloadWait == 0 {
		p.OverloadWait = caddy.Duration(stream.DefaultOverloadWait)
	}
	if p.MaxTopicsPerEvent == 0 {
		p.MaxTopicsPerEvent = DefaultMaxTopicsPerEvent
	}
	repl := caddy.NewReplacer()
	for i, t := range p.Tokens {
		v := strings.TrimSpace(repl.ReplaceAll(t, ""))
		if v == "" {
			if strings.Contains(t, "{") {
				return fmt.Errorf("sse_publish: token #%d (%s) is empty once resolved; is the environment variable set?", i+1, t)
			}
			return fmt.Errorf("sse_publish: token #%d is empty", i+1)
		}
		p.tokens = append(p.tokens, []byte(v))
	}
	allow, err := parseAllowFrom(p.AllowFrom, len(p.tokens) > 0)
	if err != nil {
		return err
	}
	p.allowFrom = allow
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	p.hub, p.table, err = app.Hub(p.Hub)
	if err != nil {
		return err
	}
	app.publisherOf(p.Hub)
	p.logger.Info("sse_publish handler ready",
		zap.String("hub", p.Hub),
		zap.Int("tokens", len(p.tokens)),
		zap.Stringers("allow_from", p.allowFrom),
		zap.String("max_body", humanize.IBytes(uint64(p.MaxBody))),
		zap.String("max_event", humanize.IBytes(uint64(p.MaxEvent))),
		zap.Stringer("overload_wait", time.Duration(p.OverloadWait)),
		zap.Int("max_topics_per_event", p.MaxTopicsPerEvent))
	return nil
}

// Validate checks the handler's settings.
func (p *PublishHandler) Validate() error {
	if p.MaxBody < 0 || p.MaxEvent < 0 || p.MaxBody > hub.MaxSize || p.MaxEvent > hub.MaxSize {
		return errors.New("sse_publish: max_body and max_event must not be negative or over 1TiB")
	}
	if p.BodyTimeout < 0 || p.StreamIdleTimeout < 0 || p.OverloadWait < 0 {
		return errors.New("sse_publish: body_timeout, stream_idle_timeout and overload_wait must not be negative")
	}
	if p.MaxTopicsPerEvent < 0 {
		return errors.New("sse_publish: max_topics_per_event must not be negative")
	}
	return nil
}

// Interface guards
var (
	_ caddy.App                   = (*App)(nil)
	_ caddy.Provisioner           = (*App)(nil)
	_ caddy.CleanerUpper          = (*App)(nil)
	_ stream.Hubs                 = (*App)(nil)
	_ caddy.Provisioner           = (*SSEHandler)(nil)
	_ caddy.Validator             = (*SSEHandler)(nil)
	_ caddy.CleanerUpper          = (*SSEHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*SSEHandler)(nil)
	_ caddy.Provisioner           = (*PublishHandler)(nil)
	_ caddy.Validator             = (*PublishHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*PublishHandler)(nil)
)
