package stream

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssehub/caddy-sse/internal/hub"
)

// Hubs is what a route needs of the "sse" app (the root package's App): the
// configuration's named hubs, their topic tables, and the signal that the
// configuration is stopping. Routes in other packages (sse_mercure) reach
// the app through it, so they need not import the root package, which
// imports them.
type Hubs interface {
	// Hub returns the named hub (taken from the pool on first use) and
	// this configuration's topic table for it.
	Hub(name string) (hub.Engine, *hub.TopicTable, error)
	// Declare adds a route's topics to its hub's table; a topic declared
	// elsewhere in the configuration with other settings is an error.
	Declare(hubName string, table *hub.TopicTable, decls []hub.TopicDecl) error
	// Stopping is closed when Caddy starts stopping this configuration.
	Stopping() <-chan struct{}
}

// HubsFrom loads the configuration's sse app (Caddy creates it even when the
// JSON config has no "sse" app).
func HubsFrom(ctx caddy.Context) (Hubs, error) {
	v, err := ctx.App("sse")
	if err != nil {
		return nil, err
	}
	h, ok := v.(Hubs)
	if !ok {
		return nil, fmt.Errorf("the sse app (%T) does not serve hubs", v)
	}
	return h, nil
}
