package caddysse

import (
	"context"
	"maps"
	"slices"

	"go.uber.org/zap"
)

// warnHubsWithoutTopics warns of each hub that an sse_publish handler
// publishes to and in which no sse handler declares a topic: every
// publish to it will be refused. That is known only once every handler is
// provisioned (they are in no fixed order): in Start when Caddy runs the
// configuration, in Cleanup when it only validates it. a.mu is held.
func (a *App) warnHubsWithoutTopics() {
	for _, name := range slices.Sorted(maps.Keys(a.publishedTo)) {
		if a.tables[name].Empty() {
			a.logger.Warn("sse_publish publishes to a hub in which no sse handler declares a topic: every publish to it will be refused (is the hub name misspelt, or the sse route missing?)",
				zap.String("hub", name))
		}
	}
}

// validated reports whether ctx ended because caddy.Validate is done with
// its configuration (`caddy validate`, `caddy adapt --validate`): every
// module was provisioned, and none will be started. A load that failed
// ends its context with another cause, and then its handlers may not all
// have declared their topics. Caddy tells the two apart only by the
// cause's text; the integration test of `caddy validate` pins it.
func validated(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	cause := context.Cause(ctx)
	return cause != nil && cause.Error() == "validation complete"
}
