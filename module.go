package caddysse

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/redishub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(SSEHandler))
	caddy.RegisterModule(new(PublishHandler))
}

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
	a.stopOnce.Do(func() {
		close(a.stopping)
		// Streams served by the event loop say goodbye before this
		// returns: Caddy may exit right after (SIGTERM).
		stream.SayGoodbye(a.stopping)
	})
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

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ stream.Hubs        = (*App)(nil)
)
