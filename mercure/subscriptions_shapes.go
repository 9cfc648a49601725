package mercure

import (
	"encoding/json"
	"strings"
)

// The shapes of the subscription events and of the subscriptions API, in
// one place: the two protocol generations differ in the topics, the JSON
// members, the media type and where the cursor goes, and the differential
// test against Mercure's own hubs adjusts them here.
//
// Modern (Mercure 1.0, spec "Active Subscriptions"):
//
//	topic  <hub path>/subscriptions/{match_type}/{match}/{subscriber}
//	event  event: mercure, data {"id", "type": "subscription", "match_type", "match",
//	       "subscriber", "active", "payload"?}
//	API    application/json; collections {"id", "type": "subscriptions", "subscriptions"};
//	       the cursor in Link: <hub>; rel="mercure"; last-event-id="…"; ETag, 304
//
// Compatibility (protocol_version_compatibility 8, as Mercure 0.24.2):
//
//	topic  /.well-known/mercure/subscriptions/{topic}/{subscriber} (under the hub path)
//	event  no event type, data {"@context": "https://mercure.rocks/", "id",
//	       "type": "Subscription", "topic", "subscriber", "active", "payload"?}
//	API    application/ld+json; collections {"@context", "id", "type": "Subscriptions",
//	       "lastEventID", "subscriptions"} (members without @context); a single
//	       subscription carries @context and lastEventID
//
// Every variable of a topic is expanded as RFC 6570 simple string
// expansion ({var}): the raw value percent-encoded exactly once, as a
// whole, '%' included (expandURIVar), as the spec's examples show
// (https%3A%2F%2Fexample.com%2F%3Aselector).

// Matcher type names, in the modern spec's canonical (lower) case.
const (
	subsMatchExact      = "exact"
	subsMatchURLPattern = "urlpattern"
	// subsMatchURITemplate names a 0.x `topic=` selector that is an RFC
	// 6570 template (compatibility mode only): the spec has no such
	// matcher type, so it gets the name of what it is.
	subsMatchURITemplate = "uritemplate"
)

// mercureContext is the JSON-LD context of the 0.x documents.
const mercureContext = "https://mercure.rocks/"

// mercureSubsEventType is the SSE event type of modern subscription events.
const mercureSubsEventType = "mercure"

// defaultMercureHubPath is the hub path of a subscription recorded without
// one (the protocol's default).
const defaultMercureHubPath = "/.well-known/mercure"

// subsShape is one generation's shape: legacy is Mercure 0.x's.
type subsShape struct{ legacy bool }

// subsModern and subsLegacy are the two shapes.
var (
	subsModern = subsShape{}
	subsLegacy = subsShape{legacy: true}
)

// eventShape is the shape of the events a handler publishes: 0.x's in
// compatibility mode (as 0.24.2 publishes them), 1.0's otherwise.
func (m *Handler) eventShape() subsShape {
	if m.compat() {
		return subsLegacy
	}
	return subsModern
}

// topic is the topic of s's events in this shape, which is also the id of
// its document and the API path that serves it.
func (sh subsShape) topic(s mercureSub) string {
	hubName := s.HubPath
	if hubName == "" {
		hubName = defaultMercureHubPath
	}
	hubName = strings.TrimSuffix(hubName, "/") // a hub at "/" or "/hub/"
	if sh.legacy {
		return hubName + "/subscriptions/" + expandURIVar(s.Match) + "/" + expandURIVar(s.Subscriber)
	}
	return hubName + "/subscriptions/" + expandURIVar(s.MatchType) + "/" + expandURIVar(s.Match) + "/" + expandURIVar(s.Subscriber)
}

// eventType is the SSE event field of the events ("" for none).
func (sh subsShape) eventType() string {
	if sh.legacy {
		return ""
	}
	return mercureSubsEventType
}

// contentType is the API's media type.
func (sh subsShape) contentType() string {
	if sh.legacy {
		return "application/ld+json"
	}
	return "application/json"
}

// cursorInLink: the API's cursor goes in the Link header (with an ETag),
// not in the body.
func (sh subsShape) cursorInLink() bool { return !sh.legacy }

// modernSubDoc is a 1.0 subscription document.
type modernSubDoc struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	MatchType  string          `json:"match_type"`
	Match      string          `json:"match"`
	Subscriber string          `json:"subscriber"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

type modernSubsDoc struct {
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	Subscriptions []modernSubDoc `json:"subscriptions"`
}

// legacySubDoc is a 0.x subscription document (JSON-LD).
type legacySubDoc struct {
	Context     string          `json:"@context,omitempty"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Topic       string          `json:"topic"`
	Subscriber  string          `json:"subscriber"`
	Active      bool            `json:"active"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	LastEventID string          `json:"lastEventID,omitempty"`
}

type legacySubsDoc struct {
	Context       string         `json:"@context"`
	ID            string         `json:"id"`
	Type          string         `json:"type"`
	LastEventID   string         `json:"lastEventID"`
	Subscriptions []legacySubDoc `json:"subscriptions"`
}

// doc is s's document. standalone: an event or a single-subscription
// answer (0.x: with @context), not a collection member; last is the
// cursor a 0.x single answer carries ("" for none).
func (sh subsShape) doc(s mercureSub, active, standalone bool, last string) any {
	if sh.legacy {
		d := legacySubDoc{ID: sh.topic(s), Type: "Subscription", Topic: s.Match, Subscriber: s.Subscriber,
			Active: active, Payload: s.Payload, LastEventID: last}
		if standalone {
			d.Context = mercureContext
		}
		return d
	}
	return modernSubDoc{ID: sh.topic(s), Type: "subscription", MatchType: s.MatchType, Match: s.Match,
		Subscriber: s.Subscriber, Active: active, Payload: s.Payload}
}

// collection is a collection answer: id is the requested path, subs the
// active subscriptions it lists, last the cursor.
func (sh subsShape) collection(id string, subs []mercureSub, last string) any {
	if sh.legacy {
		c := legacySubsDoc{Context: mercureContext, ID: id, Type: "Subscriptions", LastEventID: last,
			Subscriptions: make([]legacySubDoc, 0, len(subs))}
		for _, s := range subs {
			c.Subscriptions = append(c.Subscriptions, sh.doc(s, true, false, "").(legacySubDoc))
		}
		return c
	}
	c := modernSubsDoc{ID: id, Type: "subscriptions", Subscriptions: make([]modernSubDoc, 0, len(subs))}
	for _, s := range subs {
		c.Subscriptions = append(c.Subscriptions, sh.doc(s, true, false, "").(modernSubDoc))
	}
	return c
}

// expandURIVar is RFC 6570 simple string expansion of one value: every
// byte outside the unreserved set (ALPHA DIGIT - . _ ~) is percent-encoded,
// '%' included, so an already encoded value is encoded once more, as a
// whole, exactly once; never twice by this hub.
func expandURIVar(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
