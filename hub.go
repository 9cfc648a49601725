package caddysse

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/redishub"
)

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
