package mercure

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

// The hub of the unit tests: its resource identifier and its issuer.
const (
	testResource = "https://hub.example.com/.well-known/mercure"
	testIssuer   = "https://example.com"
)

// sel is a matcher for the expectations below.
func sel(match string, mt MercureMatcherType, payload string) MercureGrantTopic {
	s := MercureGrantTopic{MercureSelector: MercureSelector{Type: mt, Value: match}}
	if payload != "" {
		s.Payload = json.RawMessage(payload)
	}
	return s
}

// modernConfig is a modern-mode configuration: one issuer, testIssuer,
// with secret for both roles.
func modernConfig(secret string) MercureAuthConfig {
	vc := &MercureVerifierConfig{JWT: &MercureKeyConfig{Key: secret}}
	return MercureAuthConfig{Issuers: []MercureIssuerConfig{{Issuer: testIssuer, Publisher: vc, Subscriber: vc}}}
}

// compatConfig is a compatibility-mode configuration with the implicit
// issuer (top-level keys), as a 0.x hub has it.
func compatConfig(secret string) MercureAuthConfig {
	return MercureAuthConfig{PublisherJWT: &MercureKeyConfig{Key: secret}, SubscriberJWT: &MercureKeyConfig{Key: secret}, compat: true}
}

// accessClaims are the claims a modern token needs (iss, aud, exp) with
// extra ones (a nil value removes a claim).
func accessClaims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"iss": testIssuer, "aud": testResource, "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

var atHeader = map[string]any{"typ": "at+jwt"}

func TestMercureGrantShapes(t *testing.T) {
	k := mercureKeyring(t)
	limited := func(cfg MercureAuthConfig) MercureAuthConfig {
		cfg.MaxTokenDetails, cfg.MaxTokenTopics, cfg.MaxTokenSelectors, cfg.MaxSelectorLength = 2, 3, 4, 40
		return cfg
	}
	modern := newTestMercureAuth(t, limited(modernConfig(k.secret32))).Subscriber
	compat := newTestMercureAuth(t, limited(compatConfig(k.secret32))).Subscriber
	tmpl, exact, pattern := MercureTopicSelector, MercureExact, MercureURLPattern
	const mt = `"type":"https://mercure.rocks/authorization-detail"`

	cases := []struct {
		name      string
		compat    bool // verified by the compatibility-mode hub (0.x token: no typ)
		claims    string
		publish   []MercureGrantTopic
		subscribe []MercureGrantTopic
		payload   string // 0.x payload
		shape     string // expected in Shape
		reason    string // refused when set
	}{
		// Modern mode.
		{name: "details", claims: `{"authorization_details":[
			{` + mt + `,"actions":["subscribe"],"topics":[{"match":"https://example.com/books/1","match_type":"exact"},{"match":"https://example.com/books/:id","match_type":"urlpattern"}],"payload":{"p":1}},
			{` + mt + `,"actions":["publish","subscribe"],"topics":[{"match":"*"}]}]}`,
			publish:   []MercureGrantTopic{sel("*", exact, "")},
			subscribe: []MercureGrantTopic{sel("https://example.com/books/1", exact, `{"p":1}`), sel("https://example.com/books/:id", pattern, `{"p":1}`), sel("*", exact, "")}},
		{name: "absent match_type is exact", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a"}]}]}`,
			publish: []MercureGrantTopic{sel("a", exact, "")}},
		{name: "* under urlpattern is kept as the wildcard", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"*","match_type":"urlpattern"}]}]}`,
			publish: []MercureGrantTopic{sel("*", pattern, "")}},
		{name: "payload of any JSON type", claims: `{"authorization_details":[{` + mt + `,"actions":["subscribe"],"topics":[{"match":"a"}],"payload":"just a string"}]}`,
			subscribe: []MercureGrantTopic{sel("a", exact, `"just a string"`)}},
		{name: "other types skipped", claims: `{"authorization_details":[{"type":"payment_initiation","actions":["pay"],"locations":["https://bank"]},{` + mt + `,"actions":["publish"],"topics":[{"match":"a"}],"locations":["https://hub"]}]}`,
			publish: []MercureGrantTopic{sel("a", exact, "")}},
		{name: "unknown actions grant nothing", claims: `{"authorization_details":[{` + mt + `,"actions":["subscribe","admin"],"topics":[{"match":"a"}]},{` + mt + `,"actions":["future"],"topics":[{"match":"b"}]}]}`,
			subscribe: []MercureGrantTopic{sel("a", exact, "")}},
		{name: "only unknown actions", claims: `{"authorization_details":[{` + mt + `,"actions":["future"],"topics":[{"match":"b"}]}]}`, shape: "no action this hub knows"},
		{name: "the draft's type mercure grants nothing", claims: `{"authorization_details":[{"type":"mercure","actions":["publish"],"topics":[{"match":"*"}]}]}`,
			shape: "no entry of type https://mercure.rocks/authorization-detail (types seen: mercure)"},
		{name: "claim absent", claims: `{}`, shape: "no authorization_details"},
		{name: "0.x claim ignored in modern mode", claims: `{"mercure":{"publish":["*"]}}`, shape: "only with protocol_version_compatibility 8"},
		{name: "not an array", claims: `{"authorization_details":{` + mt + `}}`, reason: "authorization_details is not an array"},
		{name: "entry not an object", claims: `{"authorization_details":["mercure"]}`, reason: "authorization_details[0] is not an object"},
		{name: "entry without type", claims: `{"authorization_details":[{"actions":["publish"],"topics":[{"match":"a"}]}]}`, reason: "no string type"},
		{name: "malformed entry after a good one", claims: `{"authorization_details":[{` + mt + `,"actions":["subscribe"],"topics":[{"match":"a"}]},{` + mt + `,"actions":["subscribe"]}]}`, reason: "authorization_details[1]: topics"},
		{name: "no actions", claims: `{"authorization_details":[{` + mt + `,"topics":[{"match":"a"}]}]}`, reason: "actions"},
		{name: "empty actions", claims: `{"authorization_details":[{` + mt + `,"actions":[],"topics":[{"match":"a"}]}]}`, reason: "actions"},
		{name: "non-string action", claims: `{"authorization_details":[{` + mt + `,"actions":["publish",1],"topics":[{"match":"a"}]}]}`, reason: "actions[1] is not a string"},
		{name: "member names are case-sensitive", claims: `{"authorization_details":[{` + mt + `,"Actions":["publish"],"topics":[{"match":"a"}]}]}`, reason: "actions"},
		{name: "empty topics", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[]}]}`, reason: "topics"},
		{name: "bare string topic", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":["a"]}]}`, reason: "topics[0] is not an object"},
		{name: "topic without match", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match_type":"exact"}]}]}`, reason: "no non-empty string match"},
		{name: "unknown match_type", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a","match_type":"regexp"}]}]}`, reason: `match_type "regexp"`},
		{name: "match_type is case-sensitive", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a","match_type":"URLPattern"}]}]}`, reason: "match_type"},
		{name: "the draft's matchType is not match_type", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a","match_type":null}]}]}`, reason: "match_type null"},
		{name: "too many details", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a"}]},{` + mt + `,"actions":["publish"],"topics":[{"match":"b"}]},{` + mt + `,"actions":["publish"],"topics":[{"match":"c"}]}]}`, reason: "more than 2 Mercure authorization details"},
		{name: "too many topics in a detail", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a"},{"match":"b"},{"match":"c"},{"match":"d"}]}]}`, reason: "more than 3 topics"},
		{name: "too many matchers in all", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a"},{"match":"b"},{"match":"c"}]},{` + mt + `,"actions":["publish"],"topics":[{"match":"d"},{"match":"e"}]}]}`, reason: "more than 4 topic matchers"},
		{name: "matcher too long", claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"` + strings.Repeat("x", 41) + `"}]}]}`, reason: "longer than 40 bytes"},

		// Compatibility mode, 0.x tokens.
		{name: "0.x both actions and payload", compat: true, claims: `{"mercure":{"publish":["*"],"subscribe":["https://example.com/books/{id}","https://example.com/a"],"payload":{"user":"u1"}}}`,
			publish: []MercureGrantTopic{sel("*", tmpl, "")}, subscribe: []MercureGrantTopic{sel("https://example.com/books/{id}", tmpl, ""), sel("https://example.com/a", tmpl, "")}, payload: `{"user":"u1"}`},
		{name: "0.x namespaced claim", compat: true, claims: `{"https://mercure.rocks/":{"subscribe":["a"]}}`, subscribe: []MercureGrantTopic{sel("a", tmpl, "")}},
		{name: "0.x claim as a JSON string", compat: true, claims: `{"mercure":"{\"publish\":[\"*\"]}"}`, publish: []MercureGrantTopic{sel("*", tmpl, "")}},
		{name: "0.x payload of any JSON type", compat: true, claims: `{"mercure":{"subscribe":["a"],"payload":"just a string"}}`,
			subscribe: []MercureGrantTopic{sel("a", tmpl, "")}, payload: `"just a string"`},
		{name: "0.x claim absent", compat: true, claims: `{"sub":"x"}`, shape: "no authorization_details"},
		{name: "0.x empty lists", compat: true, claims: `{"mercure":{"publish":[],"subscribe":null}}`, shape: "lists no publish or subscribe"},
		{name: "0.x claim not an object", compat: true, claims: `{"mercure":["*"]}`, reason: "mercure claim is not an object"},
		{name: "0.x publish a string", compat: true, claims: `{"mercure":{"publish":"*"}}`, reason: "mercure.publish is not an array of strings"},
		{name: "0.x too many selectors", compat: true, claims: `{"mercure":{"publish":["a","b","c"],"subscribe":["d","e"]}}`, reason: "more than 4 topic selectors"},
		{name: "compat: a bare string topic is a 0.x selector", compat: true, claims: `{"authorization_details":[{` + mt + `,"actions":["subscribe"],"topics":["https://example.com/books/{id}",{"match":"a"}]}]}`,
			subscribe: []MercureGrantTopic{sel("https://example.com/books/{id}", tmpl, ""), sel("a", exact, "")}},
		{name: "compat reads authorization_details first", compat: true, claims: `{"authorization_details":[{` + mt + `,"actions":["publish"],"topics":[{"match":"a"}]}],"mercure":{"publish":["*"]}}`,
			publish: []MercureGrantTopic{sel("a", exact, "")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var extra jwt.MapClaims
			if err := json.Unmarshal([]byte(c.claims), &extra); err != nil {
				t.Fatal(err)
			}
			v, header := modern, atHeader
			if c.compat {
				v, header = compat, nil
			}
			g, err := v.Verify(mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), header, accessClaims(extra)), testResource)
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
			if c.shape == "" && g.Shape != "" || !strings.Contains(g.Shape, c.shape) {
				t.Fatalf("shape %q, want %q", g.Shape, c.shape)
			}
			if g.AccessToken == c.compat {
				t.Fatalf("AccessToken %v", g.AccessToken)
			}
		})
	}
}

// The payload of a subscription is the first matching subscribe matcher's;
// the 0.x payload goes with every subscription.
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
		t.Errorf("payload without matchers = %s", p)
	}
	legacy := &MercureGrant{Legacy: true, Payload: json.RawMessage(`{"u":1}`)}
	if got := string(legacy.SubscriptionPayload(func(MercureGrantTopic) bool { return false })); got != `{"u":1}` {
		t.Errorf("0.x payload = %s", got)
	}
}

// The default limits take a token as large as Mercure's: 100 details of
// 100 topics each, not 101 details nor 101 topics.
func TestMercureGrantDefaultLimits(t *testing.T) {
	k := mercureKeyring(t)
	cfg := modernConfig(k.secret32)
	cfg.MaxTokenSize = 4 << 20
	v := newTestMercureAuth(t, cfg).Publisher
	token := func(details, topics int) string {
		ds := make([]any, details)
		for i := range ds {
			ts := make([]any, topics)
			for j := range ts {
				ts[j] = map[string]any{"match": fmt.Sprintf("https://example.com/%d/%d", i, j)}
			}
			ds[i] = map[string]any{"type": mercureAuthorizationDetailType, "actions": []string{"publish"}, "topics": ts}
		}
		return mercureToken(t, jwt.SigningMethodHS256, []byte(k.secret32), atHeader, accessClaims(jwt.MapClaims{"authorization_details": ds}))
	}
	g, err := v.Verify(token(100, 100), testResource)
	if err != nil || len(g.Publish) != 100*100 {
		t.Fatalf("100 × 100: %v", err)
	}
	_, err = v.Verify(token(101, 1), testResource)
	wantRefused(t, err, "more than 100 Mercure authorization details")
	_, err = v.Verify(token(1, 101), testResource)
	wantRefused(t, err, "more than 100 topics")
	// A token of 100 details of a few topics fits the default size bound.
	cfg.MaxTokenSize = 0
	small := newTestMercureAuth(t, cfg).Publisher
	if _, err := small.Verify(token(100, 3), testResource); err != nil {
		t.Fatalf("100 details × 3 topics under the default max_token_size: %v", err)
	}
}

// Any claim value either refuses the token or yields a grant within the
// limits, with known match types; nothing panics.
func FuzzMercureClaims(f *testing.F) {
	for _, seed := range []string{
		`{"publish":["*"],"subscribe":["a"],"payload":{"x":1}}`,
		`[{"type":"https://mercure.rocks/authorization-detail","actions":["publish","subscribe"],"topics":[{"match":"a","match_type":"urlpattern"}],"payload":{}}]`,
		`[{"type":"other"},{"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],"topics":[{"match":"*"}]}]`,
		`null`, `[]`, `{}`, `[1]`, `"x"`, `[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":null}]}]`,
	} {
		f.Add([]byte(seed))
	}
	limits := mercureClaimLimits{maxDetails: 4, maxTopics: 4, maxSelectors: 8, maxLength: 16}
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(g *MercureGrant, err error, types ...MercureMatcherType) {
			if err != nil {
				if !errors.Is(err, ErrMercureInvalidToken) {
					t.Fatalf("error %v is not an invalid token error", err)
				}
				return
			}
			// A matcher of a detail with both actions is in both lists.
			if len(g.Publish) > limits.maxSelectors || len(g.Subscribe) > limits.maxSelectors {
				t.Fatalf("%d + %d matchers over the limit", len(g.Publish), len(g.Subscribe))
			}
			for _, s := range append(append([]MercureGrantTopic{}, g.Publish...), g.Subscribe...) {
				if len(s.Value) > limits.maxLength || !slices.Contains(types, s.Type) {
					t.Fatalf("matcher %+v", s)
				}
			}
		}
		g0 := &MercureGrant{}
		check(g0, g0.fromMercureClaim(raw, limits), MercureTopicSelector)
		g1 := &MercureGrant{AccessToken: true}
		check(g1, g1.fromAuthorizationDetails(raw, false, limits), MercureExact, MercureURLPattern)
		g2 := &MercureGrant{AccessToken: true}
		check(g2, g2.fromAuthorizationDetails(raw, true, limits), MercureExact, MercureURLPattern, MercureTopicSelector)
	})
}
