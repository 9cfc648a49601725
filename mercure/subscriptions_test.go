package mercure

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// The spec's examples: each variable percent-encoded once, as a whole,
// under the hub's path, in each generation's topic form.
func TestMercureSubscriptionTopic(t *testing.T) {
	for _, c := range []struct {
		s              mercureSub
		modern, legacy string
	}{
		{mercureSub{MatchType: "urlpattern", Match: "https://example.com/:selector", Subscriber: "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6"},
			"/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6",
			"/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"},
		{mercureSub{HubPath: "/.well-known/mercure", MatchType: "exact", Match: "https://example.com/a-topic", Subscriber: "urn:uuid:1e0cba4c-4bcd-44f0-ae8a-7b76f7ef1280"},
			"/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fa-topic/urn%3Auuid%3A1e0cba4c-4bcd-44f0-ae8a-7b76f7ef1280",
			"/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fa-topic/urn%3Auuid%3A1e0cba4c-4bcd-44f0-ae8a-7b76f7ef1280"},
		// A '%' in a matcher: an already encoded value is encoded once
		// more, '%' included, never decoded first nor encoded twice.
		{mercureSub{MatchType: "exact", Match: "a%2Fb c+d%", Subscriber: "u~1._-"},
			"/.well-known/mercure/subscriptions/exact/a%252Fb%20c%2Bd%25/u~1._-",
			"/.well-known/mercure/subscriptions/a%252Fb%20c%2Bd%25/u~1._-"},
		// UTF-8 bytes, each encoded; reserved characters too.
		// A hub at "/".
		{mercureSub{HubPath: "/", MatchType: "exact", Match: "x", Subscriber: "s"},
			"/subscriptions/exact/x/s", "/subscriptions/x/s"},
		{mercureSub{HubPath: "/hub/", MatchType: "uritemplate", Match: "é/{x}", Subscriber: "*"},
			"/hub/subscriptions/uritemplate/%C3%A9%2F%7Bx%7D/%2A",
			"/hub/subscriptions/%C3%A9%2F%7Bx%7D/%2A"},
	} {
		if got := subsModern.topic(c.s); got != c.modern {
			t.Errorf("%+v: modern %s, want %s", c.s, got, c.modern)
		}
		if got := subsLegacy.topic(c.s); got != c.legacy {
			t.Errorf("%+v: 0.x %s, want %s", c.s, got, c.legacy)
		}
		// The API reads what the events name.
		q, ok := parseSubscriptionsPath(c.modern, true)
		if !ok || !q.single || q.matchType != c.s.MatchType || q.match != c.s.Match || q.subscriber != c.s.Subscriber ||
			q.path != c.modern || q.shape != subsModern {
			t.Errorf("parse %s: %+v %v", c.modern, q, ok)
		}
		q, ok = parseSubscriptionsPath(c.legacy, true)
		if !ok || !q.single || q.matchType != "" || q.match != c.s.Match || q.subscriber != c.s.Subscriber ||
			q.path != c.legacy || q.shape != subsLegacy {
			t.Errorf("parse %s in compatibility mode: %+v %v", c.legacy, q, ok)
		}
	}
}

func TestParseSubscriptionsPath(t *testing.T) {
	for _, c := range []struct {
		path                  string
		compat                bool
		ok, single, legacy    bool
		matchType, match, sub string
		canon                 string
	}{
		{path: "/.well-known/mercure/subscriptions", ok: true},
		{path: "/.well-known/mercure/subscriptions", compat: true, ok: true, legacy: true},
		{path: "/hub/subscriptions", ok: true},
		{path: "/.well-known/mercure/subscriptions/exact/foo", ok: true, matchType: "exact", match: "foo"},
		{path: "/.well-known/mercure/subscriptions/exact/foo", compat: true, ok: true, matchType: "exact", match: "foo"},
		{path: "/.well-known/mercure/subscriptions/urlpattern/a%2F%3Aid/s", ok: true, single: true, matchType: "urlpattern", match: "a/:id", sub: "s"},
		// A match that is itself "subscriptions": the first such segment
		// ends the hub path.
		{path: "/.well-known/mercure/subscriptions/exact/subscriptions", ok: true, matchType: "exact", match: "subscriptions"},
		// The 0.x shapes, in compatibility mode only.
		{path: "/.well-known/mercure/subscriptions/foo", compat: true, ok: true, legacy: true, match: "foo"},
		{path: "/.well-known/mercure/subscriptions/foo/bar", compat: true, ok: true, legacy: true, single: true, match: "foo", sub: "bar"},
		{path: "/.well-known/mercure/subscriptions/URITemplate/a%7Bid%7D", compat: true, ok: true, legacy: true, single: true, match: "URITemplate", sub: "a{id}"},
		{path: "/.well-known/mercure/subscriptions/uritemplate/a%7Bid%7D", compat: true, ok: true, matchType: "uritemplate", match: "a{id}"},
		{path: "/.well-known/mercure/subscriptions/foo"},
		{path: "/.well-known/mercure/subscriptions/foo/bar"},
		{path: "/.well-known/mercure/subscriptions/uritemplate/a%7Bid%7D"},
		// The draft's capitalized types are no 1.0 matcher type.
		{path: "/.well-known/mercure/subscriptions/Exact/foo/bar"},
		// Not decoded twice: %252F is "%2F", not "/".
		{path: "/.well-known/mercure/subscriptions/exact/a%252F", ok: true, matchType: "exact", match: "a%2F"},
		// A path that is not encoded as the events name it is canonicalized.
		{path: "/.well-known/mercure/subscriptions/exact/a:b", ok: true, matchType: "exact", match: "a:b",
			canon: "/.well-known/mercure/subscriptions/exact/a%3Ab"},
		{path: "/.well-known/mercure/subscriptionsX"},
		{path: "/.well-known/mercure/subscriptions/"},
		{path: "/.well-known/mercure/subscriptions/exact//x"},
		{path: "/.well-known/mercure/subscriptions/exact/a/b/c"},
		{path: "/.well-known/mercure/subscriptions/nope/a/b", compat: true},
		{path: "/.well-known/mercure/subscriptions/exact/%zz"},
	} {
		q, ok := parseSubscriptionsPath(c.path, c.compat)
		if ok != c.ok {
			t.Errorf("%s (compat %v): ok %v", c.path, c.compat, ok)
			continue
		}
		if !ok {
			continue
		}
		canon := c.canon
		if canon == "" {
			canon = c.path
		}
		if q.single != c.single || q.shape.legacy != c.legacy || q.matchType != c.matchType || q.match != c.match ||
			q.subscriber != c.sub || q.path != canon {
			t.Errorf("%s (compat %v): %+v", c.path, c.compat, q)
		}
	}
}

// The documents, member by member, in both generations.
func TestMercureSubscriptionDocuments(t *testing.T) {
	s := mercureSub{MatchType: "urlpattern", Match: "https://example.com/:selector",
		Subscriber: "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6", Payload: json.RawMessage(`{"foo":"bar"}`)}
	id := "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"
	legacyID := "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"
	modern := `{"id":"` + id + `","type":"subscription","match_type":"urlpattern","match":"https://example.com/:selector",` +
		`"subscriber":"urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6","active":true,"payload":{"foo":"bar"}}`
	legacyMember := `{"id":"` + legacyID + `","type":"Subscription","topic":"https://example.com/:selector",` +
		`"subscriber":"urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6","active":true,"payload":{"foo":"bar"}}`
	ended := s
	ended.Payload = nil
	for _, c := range []struct {
		name string
		doc  any
		want string
	}{
		{"modern event", subsModern.doc(s, true, true, ""), modern},
		{"modern event, ended, no payload", subsModern.doc(ended, false, true, ""),
			`{"id":"` + id + `","type":"subscription","match_type":"urlpattern","match":"https://example.com/:selector",` +
				`"subscriber":"urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6","active":false}`},
		{"modern single answer: the event's document unchanged", subsModern.doc(s, true, true, "#x"), modern},
		{"modern collection", subsModern.collection("/.well-known/mercure/subscriptions", []mercureSub{s}, "#x"),
			`{"id":"/.well-known/mercure/subscriptions","type":"subscriptions","subscriptions":[` + modern + `]}`},
		{"modern empty collection", subsModern.collection("/c", nil, "earliest"), `{"id":"/c","type":"subscriptions","subscriptions":[]}`},
		{"0.x event", subsLegacy.doc(s, true, true, ""), `{"@context":"https://mercure.rocks/",` + legacyMember[1:]},
		{"0.x single answer", subsLegacy.doc(s, true, true, "#x"),
			`{"@context":"https://mercure.rocks/",` + legacyMember[1:len(legacyMember)-1] + `,"lastEventID":"#x"}`},
		{"0.x collection", subsLegacy.collection("/.well-known/mercure/subscriptions", []mercureSub{s}, "#x"),
			`{"@context":"https://mercure.rocks/","id":"/.well-known/mercure/subscriptions","type":"Subscriptions","lastEventID":"#x","subscriptions":[` + legacyMember + `]}`},
	} {
		b, err := json.Marshal(c.doc)
		if err != nil || string(b) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, b, c.want)
		}
	}
	if subsModern.eventType() != "mercure" || subsLegacy.eventType() != "" ||
		subsModern.contentType() != "application/json" || subsLegacy.contentType() != "application/ld+json" {
		t.Errorf("event types or media types wrong")
	}
}

func TestSplitSubscriptionsPath(t *testing.T) {
	for _, c := range []struct{ path, hub, rest string }{
		{"/.well-known/mercure/subscriptions", "/.well-known/mercure", ""},
		{"/.well-known/mercure/subscriptions/exact/x", "/.well-known/mercure", "/exact/x"},
		{"/subscriptions", "", ""},
		{"/a/subscriptionsx/subscriptions/b", "/a/subscriptionsx", "/b"},
		{"/.well-known/mercure", "", "-"},
		{"/.well-known/mercure/subscriptionsx", "", "-"},
	} {
		hubName, rest, ok := splitSubscriptionsPath(c.path)
		if c.rest == "-" {
			if ok {
				t.Errorf("%s: split as %q %q", c.path, hubName, rest)
			}
			continue
		}
		if !ok || hubName != c.hub || rest != c.rest {
			t.Errorf("%s: %q %q %v", c.path, hubName, rest, ok)
		}
	}
}

func compileForTest(t *testing.T, sels ...MercureSelector) []*MercureMatcher {
	t.Helper()
	ms, err := NewMercureSelectors(MercureSelectorConfig{}).CompileAll(sels, "https://example.com/.well-known/mercure")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// One subscriber id per connection, never the token's sub; the payload of
// the first subscribe detail whose topics match the subscription's own
// matcher.
func TestConnectionSubscriptions(t *testing.T) {
	subscribed := compileForTest(t,
		MercureSelector{Type: MercureTopicSelector, Value: "https://example.com/books/{id}"},
		MercureSelector{Type: MercureTopicSelector, Value: "https://example.com/plain"},
		MercureSelector{Type: MercureExact, Value: "https://example.com/plain"}, // the same subscription
		MercureSelector{Type: MercureURLPattern, Value: "https://example.com/bar/:id"},
	)
	grant := &MercureGrant{AccessToken: true, Subject: "https://example.com/users/1", Subscribe: []MercureGrantTopic{
		{MercureSelector: MercureSelector{Type: MercureExact, Value: "https://example.com/plain"}, Payload: json.RawMessage(`{"a":1}`)},
		{MercureSelector: MercureSelector{Type: MercureURLPattern, Value: "https://example.com/bar/:id"}, Payload: json.RawMessage(`{"c":3}`)},
		{MercureSelector: MercureSelector{Type: MercureExact, Value: "*"}, Payload: json.RawMessage(`{"b":2}`)},
	}}
	private := compileForTest(t, grantSelectors(grant.Subscribe)...)
	subs := connectionSubscriptions("/.well-known/mercure", subscribed, private, grant)
	if len(subs) != 3 {
		t.Fatalf("%d subscriptions, want 3 (duplicates merged): %+v", len(subs), subs)
	}
	want := []struct{ matchType, match, payload string }{
		{"uritemplate", "https://example.com/books/{id}", `{"b":2}`},
		{"exact", "https://example.com/plain", `{"a":1}`},
		{"urlpattern", "https://example.com/bar/:id", `{"c":3}`},
	}
	for i, w := range want {
		s := subs[i]
		if s.MatchType != w.matchType || s.Match != w.match || string(s.Payload) != w.payload || s.Subscriber != subs[0].Subscriber ||
			s.HubPath != "/.well-known/mercure" {
			t.Errorf("subscription %d: %+v, want %+v", i, s, w)
		}
	}
	// The same token on a second connection: another subscriber.
	again := connectionSubscriptions("/.well-known/mercure", subscribed[:1], private, grant)
	for _, s := range []mercureSub{subs[0], again[0]} {
		if !strings.HasPrefix(s.Subscriber, "urn:uuid:") || len(s.Subscriber) != 45 || strings.Contains(s.Subscriber, "users") {
			t.Errorf("subscriber %q is not a urn:uuid", s.Subscriber)
		}
	}
	if again[0].Subscriber == subs[0].Subscriber || again[0].key() == subs[0].key() {
		t.Errorf("two connections with one token share the subscriber %q", again[0].Subscriber)
	}
	// Without a token: no payload.
	if a := connectionSubscriptions("", subscribed[:1], nil, nil); a[0].Payload != nil {
		t.Errorf("anonymous subscription with a payload: %+v", a[0])
	}
}

// The same subscription held twice is active from the first join to the
// last leave.
func TestMemorySubsRegistry(t *testing.T) {
	ctx := context.Background()
	r := newMemorySubsRegistry()
	s1 := mercureSub{MatchType: "exact", Match: "a", Subscriber: "u1"}
	s2 := mercureSub{MatchType: "exact", Match: "b", Subscriber: "u1"}
	if got := r.join(ctx, []mercureSub{s1, s2}); len(got) != 2 {
		t.Fatalf("first join activated %d", len(got))
	}
	if got := r.join(ctx, []mercureSub{s1}); len(got) != 0 {
		t.Fatalf("second join activated %d", len(got))
	}
	if got := r.leave(ctx, []mercureSub{s1, s2}); len(got) != 1 || got[0].key() != s2.key() {
		t.Fatalf("first leave ended %+v, want b only", got)
	}
	if l, _ := r.list(ctx); len(l) != 1 || l[0].key() != s1.key() {
		t.Fatalf("list %+v, want a", l)
	}
	if got := r.leave(ctx, []mercureSub{s1}); len(got) != 1 {
		t.Fatalf("last leave ended %d", len(got))
	}
	if got := r.leave(ctx, []mercureSub{s1}); len(got) != 0 {
		t.Fatalf("a leave too many ended %d", len(got))
	}
	if l, _ := r.list(ctx); len(l) != 0 || len(r.subs) != 0 {
		t.Fatalf("registry not empty: %+v", l)
	}
}

func TestETagMatches(t *testing.T) {
	const e = `"abc"`
	for _, c := range []struct {
		h    []string
		want bool
	}{
		{nil, false}, {[]string{`"abc"`}, true}, {[]string{`W/"abc"`}, true}, {[]string{`"x", "abc"`}, true},
		{[]string{`"x"`, `"abc"`}, true}, {[]string{"*"}, true}, {[]string{`"ab"`}, false}, {[]string{`abc`}, false},
	} {
		if got := etagMatches(c.h, e); got != c.want {
			t.Errorf("%q: %v", c.h, got)
		}
	}
}
