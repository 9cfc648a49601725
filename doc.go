// Package caddysse turns Caddy into a Server-Sent Events hub: the "sse"
// handler serves declared topics to EventSource clients, with heartbeats and
// replay from a ring buffer on Last-Event-ID; the "sse_publish" handler lets
// applications publish events with a plain HTTP POST.
//
// This package is the Caddy glue: the "sse" app and its pool of hubs
// (module.go), the Caddyfile (caddyfile.go), and the sse and sse_publish
// routes. The core is internal/hub (no Caddy, HTTP, Redis or Mercure), the
// Redis engine internal/redishub, the streaming both routes share
// internal/stream, and the Mercure protocol the mercure package, which
// imports.go brings in. docs/architecture.md draws the layers.
//
// caddy-sse is licensed under the Apache License, Version 2.0 (the LICENSE
// file at the repository's root).
package caddysse
