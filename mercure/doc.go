// Package mercure serves the Mercure protocol (spec 1.0, and the 0.x
// protocol in compatibility mode) as the sse_mercure handler, on the same
// hubs as caddy-sse's own routes. It uses the core only through its
// exported API (internal/hub: subscribe with a filter, publish with
// metadata) and writes its streams with internal/stream; the core knows
// nothing of it. The root package imports it (its imports.go), so building
// Caddy with github.com/ssehub/caddy-sse brings sse_mercure too.
//
// docs/mercure.md is the user's guide; docs/mercure-notes.md the design
// notes.
package mercure
