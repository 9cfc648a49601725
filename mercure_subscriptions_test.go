package caddysse

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// The draft's examples: each variable percent-encoded once, as a whole.
func TestMercureSubscriptionTopic(t *testing.T) {
	for _, c := range []struct{ matchType, match, subscriber, want string }{
		{"URLPattern", "https://example.com/:selector", "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
			"/.well-known/mercure/subscriptions/URLPattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"},
		{"Exact", "https://example.com/a-topic", "urn:uuid:1e0cba4c-4bcd-44f0-ae8a-7b76f7ef1280",
			"/.well-known/mercure/subscriptions/Exact/https%3A%2F%2Fexample.com%2Fa-topic/urn%3Auuid%3A1e0cba4c-4bcd-44f0-ae8a-7b76f7ef1280"},
		// An already encoded value is encoded once more, '%' included.
		{"Exact", "a%2Fb c+d", "u~1._-", "/.well-known/mercure/subscriptions/Exact/a%252Fb%20c%2Bd/u~1._-"},
		// UTF-8 bytes, each encoded.
		{"Exact", "é/{x}", "*", "/.well-known/mercure/subscriptions/Exact/%C3%A9%2F%7Bx%7D/%2A"},
	} {
		if got := mercureSubscriptionTopic(c.matchType, c.match, c.subscriber); got != c.want {
			t.Errorf("%s %q %q: %s, want %s", c.matchType, c.match, c.subscriber, got, c.want)
		}
		// The API reads what the events name.
		q, ok := parseSubscriptionsPath(c.want)
		if !ok || !q.single || q.matchType != c.matchType || q.match != c.match || q.subscriber != c.subscriber || q.path != c.want {
			t.Errorf("parse %s: %+v %v", c.want, q, ok)
		}
	}
}

func TestParseSubscriptionsPath(t *testing.T) {
	for _, c := range []struct {
		path                  string
		ok, single            bool
		matchType, match, sub string
		canon                 string
	}{
		{path: "/.well-known/mercure/subscriptions", ok: true, canon: "/.well-known/mercure/subscriptions"},
		{path: "/.well-known/mercure/subscriptions/Exact/foo", ok: true, matchType: "Exact", match: "foo"},
		{path: "/.well-known/mercure/subscriptions/URITemplate/a%7Bid%7D", ok: true, matchType: "URITemplate", match: "a{id}"},
		{path: "/.well-known/mercure/subscriptions/foo", ok: true, match: "foo"},                               // 0.x collection
		{path: "/.well-known/mercure/subscriptions/foo/bar", ok: true, single: true, match: "foo", sub: "bar"}, // 0.x single
		// Not decoded twice: %252F is "%2F", not "/".
		{path: "/.well-known/mercure/subscriptions/Exact/a%252F", ok: true, matchType: "Exact", match: "a%2F"},
		// A path that is not encoded as the events name it is canonicalized.
		{path: "/.well-known/mercure/subscriptions/Exact/a:b", ok: true, matchType: "Exact", match: "a:b",
			canon: "/.well-known/mercure/subscriptions/Exact/a%3Ab"},
		{path: "/.well-known/mercure/subscriptionsX"},
		{path: "/.well-known/mercure/subscriptions/"},
		{path: "/.well-known/mercure/subscriptions/Exact//x"},
		{path: "/.well-known/mercure/subscriptions/Exact/a/b/c"},
		{path: "/.well-known/mercure/subscriptions/Nope/a/b"},
		{path: "/.well-known/mercure/subscriptions/Exact/%zz"},
	} {
		q, ok := parseSubscriptionsPath(c.path)
		if ok != c.ok {
			t.Errorf("%s: ok %v", c.path, ok)
			continue
		}
		if !ok {
			continue
		}
		canon := c.canon
		if canon == "" {
			canon = c.path
		}
		if q.single != c.single || q.matchType != c.matchType || q.match != c.match || q.subscriber != c.sub || q.path != canon {
			t.Errorf("%s: %+v", c.path, q)
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

func TestConnectionSubscriptions(t *testing.T) {
	subscribed := compileForTest(t,
		MercureSelector{Type: MercureTopicSelector, Value: "https://example.com/books/{id}"},
		MercureSelector{Type: MercureTopicSelector, Value: "https://example.com/plain"},
		MercureSelector{Type: MercureExact, Value: "https://example.com/plain"}, // the same subscription
		MercureSelector{Type: MercureURLPattern, Value: "https://example.com/:x"},
	)
	grant := &MercureGrant{AccessToken: true, Subject: "https://example.com/users/1", Subscribe: []MercureGrantTopic{
		{MercureSelector: MercureSelector{Type: MercureExact, Value: "https://example.com/plain"}, Payload: json.RawMessage(`{"a":1}`)},
		{MercureSelector: MercureSelector{Type: MercureExact, Value: "*"}, Payload: json.RawMessage(`{"b":2}`)},
	}}
	private := compileForTest(t, grantSelectors(grant.Subscribe)...)
	subs := connectionSubscriptions(subscribed, private, grant)
	if len(subs) != 3 {
		t.Fatalf("%d subscriptions, want 3 (duplicates merged): %+v", len(subs), subs)
	}
	want := []struct{ matchType, match, payload string }{
		{"URITemplate", "https://example.com/books/{id}", `{"b":2}`},
		{"Exact", "https://example.com/plain", `{"a":1}`},
		{"URLPattern", "https://example.com/:x", `{"b":2}`},
	}
	for i, w := range want {
		s := subs[i]
		if s.MatchType != w.matchType || s.Match != w.match || string(s.Payload) != w.payload || s.Subscriber != grant.Subject ||
			s.ID != mercureSubscriptionTopic(w.matchType, w.match, grant.Subject) {
			t.Errorf("subscription %d: %+v, want %+v", i, s, w)
		}
	}
	// Without a token: a fresh urn:uuid per connection.
	a := connectionSubscriptions(subscribed[:1], nil, nil)
	b := connectionSubscriptions(subscribed[:1], nil, nil)
	if !strings.HasPrefix(a[0].Subscriber, "urn:uuid:") || len(a[0].Subscriber) != 45 || a[0].Subscriber == b[0].Subscriber || a[0].Payload != nil {
		t.Errorf("anonymous subscribers %q and %q", a[0].Subscriber, b[0].Subscriber)
	}
}

// The same subscription held by two connections is active from the first
// join to the last leave.
func TestMemorySubsRegistry(t *testing.T) {
	ctx := context.Background()
	r := newMemorySubsRegistry()
	s1 := newMercureSub("Exact", "a", "u1", nil)
	s2 := newMercureSub("Exact", "b", "u1", nil)
	if got := r.join(ctx, []mercureSub{s1, s2}); len(got) != 2 {
		t.Fatalf("first join activated %d", len(got))
	}
	if got := r.join(ctx, []mercureSub{s1}); len(got) != 0 {
		t.Fatalf("second connection activated %d", len(got))
	}
	if got := r.leave(ctx, []mercureSub{s1, s2}); len(got) != 1 || got[0].ID != s2.ID {
		t.Fatalf("first leave ended %+v, want b only", got)
	}
	if l, _ := r.list(ctx); len(l) != 1 || l[0].ID != s1.ID {
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
