// Package caddysse turns Caddy into a Server-Sent Events hub: the "sse"
// handler serves declared topics to EventSource clients, with heartbeats and
// replay from a ring buffer on Last-Event-ID; the "sse_publish" handler lets
// applications publish events with a plain HTTP POST.
//
// The hub core (hub.go, replay.go, topics.go, event.go, publish_body.go)
// knows nothing about Caddy; module.go, caddyfile.go, subscribe.go and
// publish.go connect it to Caddy.
//
// caddy-sse is licensed under the Apache License, Version 2.0 (the LICENSE
// file at the repository's root).
package caddysse
