package caddysse

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sel is a selector for the expectations below.
func sel(match string, mt MercureMatcherType, payload string) MercureGrantTopic {
	s := MercureGrantTopic{MercureSelector: MercureSelector{Type: mt, Value: match}}
	if payload != "" {
		s.Payload = json.RawMessage(payload)
	}
	return s
}

func TestMercureGrantShapes(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}, MaxTokenSelectors: 4, MaxSelectorLength: 40}).Subscriber
	exp := time.Now().Add(time.Hour).Unix()
	at := map[string]any{"typ": "at+jwt"}
	tmpl, exact, pattern := MercureTopicSelector, MercureExact, MercureURLPattern

	cases := []struct {
		name      string
		header    map[string]any
		claims    string // JSON
		publish   []MercureGrantTopic
		subscribe []MercureGrantTopic
		payload   string
		reason    string // refused when set
	}{
		// 0.x
		{name: "0.x both actions and payload", claims: `{"mercure":{"publish":["*"],"subscribe":["https://example.com/books/{id}","https://example.com/a"],"payload":{"user":"u1"}}}`,
			publish: []MercureGrantTopic{sel("*", tmpl, "")}, subscribe: []MercureGrantTopic{sel("https://example.com/books/{id}", tmpl, ""), sel("https://example.com/a", tmpl, "")}, payload: `{"user":"u1"}`},
		{name: "0.x payload of any JSON type", claims: `{"mercure":{"subscribe":["a"],"payload":"just a string"}}`,
			subscribe: []MercureGrantTopic{sel("a", tmpl, "")}, payload: `"just a string"`},
		{name: "0.x claim absent", claims: `{"sub":"x"}`},
		{name: "0.x claim null", claims: `{"mercure":null}`},
		{name: "0.x empty lists", claims: `{"mercure":{"publish":[],"subscribe":null}}`},
		{name: "0.x unknown members ignored", claims: `{"mercure":{"subscribe":["a"],"future":1}}`, subscribe: []MercureGrantTopic{sel("a", tmpl, "")}},
		{name: "0.x claim not an object", claims: `{"mercure":["*"]}`, reason: "mercure claim is not an object"},
		{name: "0.x publish a string", claims: `{"mercure":{"publish":"*"}}`, reason: "mercure.publish is not an array of strings"},
		{name: "0.x subscribe with a number", claims: `{"mercure":{"subscribe":["a",1]}}`, reason: "mercure.subscribe"},
		{name: "0.x names are case-sensitive", claims: `{"mercure":{"Publish":["*"]}}`},
		{name: "0.x token ignores authorization_details", claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"*"}]}]}`},
		{name: "0.x too many selectors", claims: `{"mercure":{"publish":["a","b","c"],"subscribe":["d","e"]}}`, reason: "more than 4 topic selectors"},
		{name: "0.x selector too long", claims: `{"mercure":{"subscribe":["` + strings.Repeat("x", 41) + `"]}}`, reason: "longer than 40 bytes"},

		// 1.0
		{name: "1.0 details", header: at, claims: `{"authorization_details":[
			{"type":"mercure","actions":["subscribe"],"topics":[{"match":"https://example.com/books/1","matchType":"Exact"},{"match":"https://example.com/books/:id","matchType":"URLPattern"}],"payload":{"p":1}},
			{"type":"mercure","actions":["publish","subscribe"],"topics":[{"match":"*"}]}]}`,
			publish:   []MercureGrantTopic{sel("*", exact, "")},
			subscribe: []MercureGrantTopic{sel("https://example.com/books/1", exact, `{"p":1}`), sel("https://example.com/books/:id", pattern, `{"p":1}`), sel("*", exact, "")}},
		{name: "1.0 other types skipped", header: at, claims: `{"authorization_details":[{"type":"payment_initiation","actions":["pay"],"locations":["https://bank"]},{"type":"mercure","actions":["publish"],"topics":[{"match":"a"}],"locations":["https://hub"]}]}`,
			publish: []MercureGrantTopic{sel("a", exact, "")}},
		{name: "1.0 claim absent", header: at, claims: `{}`},
		{name: "1.0 token ignores the 0.x claim", header: at, claims: `{"mercure":{"publish":["*"]}}`},
		{name: "1.0 not an array", header: at, claims: `{"authorization_details":{"type":"mercure"}}`, reason: "authorization_details is not an array"},
		{name: "1.0 entry not an object", header: at, claims: `{"authorization_details":["mercure"]}`, reason: "authorization_details[0] is not an object"},
		{name: "1.0 entry without type", header: at, claims: `{"authorization_details":[{"actions":["publish"],"topics":[{"match":"a"}]}]}`, reason: "no string type"},
		{name: "1.0 type null", header: at, claims: `{"authorization_details":[{"type":null}]}`, reason: "no string type"},
		{name: "1.0 malformed entry after a good one", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["subscribe"],"topics":[{"match":"a"}]},{"type":"mercure","actions":["subscribe"]}]}`, reason: "authorization_details[1]: topics"},
		{name: "1.0 no actions", header: at, claims: `{"authorization_details":[{"type":"mercure","topics":[{"match":"a"}]}]}`, reason: "actions"},
		{name: "1.0 empty actions", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":[],"topics":[{"match":"a"}]}]}`, reason: "actions"},
		{name: "1.0 unknown action", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["subscribe","admin"],"topics":[{"match":"a"}]}]}`, reason: `unknown action "admin"`},
		{name: "1.0 member names are case-sensitive", header: at, claims: `{"authorization_details":[{"type":"mercure","Actions":["publish"],"topics":[{"match":"a"}]}]}`, reason: "actions"},
		{name: "1.0 empty topics", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[]}]}`, reason: "topics"},
		{name: "1.0 topic a string", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":["a"]}]}`, reason: "topics[0] is not an object"},
		{name: "1.0 topic without match", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"matchType":"Exact"}]}]}`, reason: "no string match"},
		{name: "1.0 unknown matchType", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"a","matchType":"exact"}]}]}`, reason: "matchType"},
		{name: "1.0 payload not an object", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["subscribe"],"topics":[{"match":"a"}],"payload":[1]}]}`, reason: "payload is not an object"},
		{name: "1.0 too many selectors", header: at, claims: `{"authorization_details":[{"type":"mercure","actions":["publish","subscribe"],"topics":[{"match":"a"},{"match":"b"},{"match":"c"}]}]}`, reason: "more than 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var claims jwt.MapClaims
			if err := json.Unmarshal([]byte(c.claims), &claims); err != nil {
				t.Fatal(err)
			}
			claims["exp"] = exp
			g, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), c.header, claims))
			if c.reason != "" {
				wantRefused(t, err, c.reason)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !reflect.DeepEqual(g.Publish, c.publish) || !reflect.DeepEqual(g.Subscribe, c.subscribe) {
				t.Fatalf("publish %v subscribe %v, want %v %v", g.Publish, g.Subscribe, c.publish, c.subscribe)
			}
			if string(g.Payload) != c.payload {
				t.Fatalf("payload %s, want %s", g.Payload, c.payload)
			}
			if g.AccessToken != (c.header != nil) {
				t.Fatalf("AccessToken %v", g.AccessToken)
			}
		})
	}
}

// The 1.0 payload of a subscription is the first matching subscribe
// selector's; the 0.x payload goes with every subscription.
func TestMercureGrantSubscriptionPayload(t *testing.T) {
	g := &MercureGrant{AccessToken: true, Subscribe: []MercureGrantTopic{
		sel("https://example.com/foo", MercureExact, `{"custom1":1}`),
		sel("https://example.com/bare", MercureExact, ""),
		sel("*", MercureExact, `{"custom3":3}`),
	}}
	equal := func(matcher string) func(MercureGrantTopic) bool {
		return func(s MercureGrantTopic) bool { return s.IsWildcard() || s.Value == matcher }
	}
	for matcher, want := range map[string]string{
		"https://example.com/foo":  `{"custom1":1}`,
		"https://example.com/bare": "",
		"https://example.com/else": `{"custom3":3}`,
	} {
		if got := string(g.SubscriptionPayload(equal(matcher))); got != want {
			t.Errorf("payload for %s = %s, want %s", matcher, got, want)
		}
	}
	none := &MercureGrant{AccessToken: true}
	if p := none.SubscriptionPayload(equal("x")); p != nil {
		t.Errorf("payload without selectors = %s", p)
	}
	legacy := &MercureGrant{Payload: json.RawMessage(`{"u":1}`)}
	if got := string(legacy.SubscriptionPayload(func(MercureGrantTopic) bool { return false })); got != `{"u":1}` {
		t.Errorf("0.x payload = %s", got)
	}
}

// The default limit: a token may carry 256 selectors, not 257.
func TestMercureGrantDefaultLimit(t *testing.T) {
	k := mercureKeyring(t)
	v := newTestMercureAuth(t, MercureAuthConfig{SubscriberJWT: &MercureKeyConfig{Key: k.secret32}, MaxTokenSize: 1 << 20}).Subscriber
	for n, ok := range map[int]bool{mercureDefaultMaxSelectors: true, mercureDefaultMaxSelectors + 1: false} {
		sels := make([]string, n)
		for i := range sels {
			sels[i] = fmt.Sprintf("t%d", i)
		}
		_, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), nil, jwt.MapClaims{"mercure": map[string]any{"subscribe": sels}}))
		if ok && err != nil {
			t.Fatalf("%d selectors refused: %v", n, err)
		}
		if !ok {
			wantRefused(t, err, "more than 256")
		}
	}
}

// Any claim value either refuses the token or yields a grant within the
// limits, with known match types; nothing panics.
func FuzzMercureClaims(f *testing.F) {
	for _, seed := range []string{
		`{"publish":["*"],"subscribe":["a"],"payload":{"x":1}}`,
		`[{"type":"mercure","actions":["publish","subscribe"],"topics":[{"match":"a","matchType":"URLPattern"}],"payload":{}}]`,
		`[{"type":"other"},{"type":"mercure","actions":["subscribe"],"topics":[{"match":"*"}]}]`,
		`null`, `[]`, `{}`, `[1]`, `"x"`, `[{"type":"mercure","actions":["publish"],"topics":[{"match":null}]}]`,
	} {
		f.Add([]byte(seed))
	}
	limits := mercureClaimLimits{maxSelectors: 8, maxLength: 16}
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(g *MercureGrant, err error, types ...MercureMatcherType) {
			if err != nil {
				if !errors.Is(err, ErrMercureInvalidToken) {
					t.Fatalf("error %v is not an invalid token error", err)
				}
				return
			}
			all := append(append([]MercureGrantTopic{}, g.Publish...), g.Subscribe...)
			if len(all) > limits.maxSelectors {
				t.Fatalf("%d selectors over the limit", len(all))
			}
			for _, s := range all {
				if len(s.Value) > limits.maxLength || !slices.Contains(types, s.Type) {
					t.Fatalf("selector %+v", s)
				}
			}
		}
		g0 := &MercureGrant{}
		check(g0, g0.fromMercureClaim(raw, limits), MercureTopicSelector)
		g1 := &MercureGrant{AccessToken: true}
		check(g1, g1.fromAuthorizationDetails(raw, limits), MercureExact, MercureURLPattern)
	})
}
