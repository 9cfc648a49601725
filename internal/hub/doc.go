// Package hub is caddy-sse's core: the Engine interface that the routes
// publish to and subscribe from, the in-memory engine (Hub: fan-out, replay
// rings, resume, topics, idempotency, counters) and the exported fan-out API
// a shared engine (internal/redishub) builds on.
//
// It knows nothing of Caddy, HTTP, Redis or Mercure: the routes resolve
// topic names against their configuration and hand it TopicRefs. A test
// (layers_test.go) keeps it that way.
package hub
