package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// internalTopicsSite puts sse routes that accept client-chosen names (a
// one-segment wildcard, a one-segment placeholder, a grant the client
// itself fills) next to an sse_mercure route on the same hub. That hub
// keeps every Mercure update, private ones included, in its internal
// topic ~mercure, and subscription events in ~mercure-subscriptions.
const internalTopicsSite = `:{PORT} {
	sse /any {
		topic * marker
	}
	sse /placeholder {
		topic {query.t} marker
	}
	sse /grant {
		topic *
		grant {http.request.header.X-Grant}
	}
	sse_publish /publish
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		subscriptions
		protocol_version_compatibility 8
	}
}
`

// TestSafetyInternalTopicsNeverServed: no client-supplied name reaches an
// internal topic (issue 16, hole 1). Every form of ~mercure and
// ~mercure-subscriptions a client can send is refused with a 4xx, and a
// stream that was (wrongly) opened is read up to a public marker to show
// whether the private update leaked.
func TestSafetyInternalTopicsNeverServed(t *testing.T) {
	c := startCaddy(t, internalTopicsSite)
	hub := c.base + "/.well-known/mercure"
	pub := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	const secret = "SECRET-private-update"
	// Retained in ~mercure before anyone asks: a replay would carry it.
	mustMercurePublish(t, hub, pub, update("https://example.com/secret", secret, "private", "on"))
	// Resuming from the hub's first id replays everything a topic retains.
	fromStart := url.QueryEscape(c.stats(t, "default").Epoch + "-0")

	type attempt struct {
		name    string
		path    string // with its query, as sent on the wire
		headers []string
	}
	var attempts []attempt
	for _, internal := range []string{"~mercure", "~mercure-subscriptions"} {
		encoded := "%7E" + internal[1:]
		lower := "%7e" + internal[1:]
		attempts = append(attempts,
			attempt{"wildcard " + internal, "/any?topic=" + internal + "&topic=marker", nil},
			attempt{"wildcard " + encoded, "/any?topic=" + encoded + "&topic=marker", nil},
			attempt{"wildcard " + lower, "/any?topic=" + lower + "&topic=marker", nil},
			attempt{"wildcard, resuming " + internal, "/any?topic=" + url.QueryEscape(internal) + "&topic=marker&last_event_id=" + fromStart, nil},
			attempt{"placeholder " + internal, "/placeholder?t=" + internal, nil},
			attempt{"placeholder " + encoded, "/placeholder?t=" + encoded, nil},
			attempt{"grant " + internal, "/grant", []string{"X-Grant: " + internal + " marker"}},
			attempt{"grant and pick " + internal, "/grant?topic=" + encoded + "&topic=marker", []string{"X-Grant: " + internal + ", marker"}},
		)
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			s := subscribe(t, client, c.base+a.path, a.headers...)
			defer s.close()
			if s.resp.StatusCode >= 400 && s.resp.StatusCode < 500 {
				return
			}
			t.Errorf("GET %s: status %d, want a 4xx: an internal topic was served", a.path, s.resp.StatusCode)
			if s.resp.StatusCode != http.StatusOK {
				return
			}
			// Served: does the private update reach it? A fresh private
			// update, then a public marker on the same stream; whatever
			// came before the marker is what leaked.
			s.waitRaw(": caddy-sse\n")
			mustMercurePublish(t, hub, pub, update("https://example.com/secret", secret+"-live", "private", "on"))
			publishData(t, c.base+"/publish", "marker", "the-marker")
			s.waitRaw("the-marker")
			if raw := s.rawString(); strings.Contains(raw, secret) {
				t.Errorf("GET %s read a private update:\n%s", a.path, raw)
			}
		})
	}

	// The ordinary names keep working on the same routes.
	ok := subscribe(t, client, c.base+"/any?topic=marker").ready()
	publishData(t, c.base+"/publish", "marker", "still-served")
	if ev := ok.next(); ev.Data != "still-served" {
		t.Errorf("marker stream got %q", ev.Data)
	}
}
