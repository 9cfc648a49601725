package integration

import (
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The differential table: the requests sent to Mercure's hub and to
// sse_mercure. Changing a modern case makes its 1.0 transcript stale: the
// replay says so, and oracle/record.sh 1.0 re-records them.

// The keys and the issuer both sides are configured with.
const (
	oraclePubKey = "oracle-publisher-key-0123456789abcdef"
	oracleSubKey = "oracle-subscriber-key-0123456789abcdef"
	oracleIssuer = "https://issuer.example"
	oracleApp    = "https://app.example" // the listed CORS and publish origin
)

// oracleHubConfig is one hub configuration, written twice: for Mercure's
// module and for sse_mercure. {PORT} is the site's port, {DIR} the
// process's own directory.
type oracleHubConfig struct {
	mercure string
	ours    string
}

// oracleModernHubs: Mercure 1.0's configuration (docs/deployment/
// configuration.md) and today's sse_mercure equivalent. Plain HTTP on
// loopback: the cookie name has no __Secure- prefix (the docs say so for
// plain-HTTP development).
var oracleModernHubs = map[string]oracleHubConfig{
	"main":     {mercure: oracleMercureMain, ours: asSSEMercure(oracleMercureMain)},
	"corsstar": {mercure: oracleMercureCORSStar, ours: asSSEMercure(oracleMercureCORSStar)},
}

// oracleMercureMain is Mercure 1.0's configuration of the main hub.
const oracleMercureMain = `http://127.0.0.1:{PORT} {
	route {
		mercure {
			issuer ` + oracleIssuer + ` {
				publisher {
					jwt ` + oraclePubKey + ` HS256
				}
				subscriber {
					jwt ` + oracleSubKey + ` HS256
				}
			}
			resource_identifier http://127.0.0.1:{PORT}/.well-known/mercure
			anonymous
			subscriptions
			cors_origins ` + oracleApp + `
			publish_origins ` + oracleApp + `
			cookie_name mercure_access_token
			heartbeat 100ms
			transport bolt {
				path {DIR}/mercure.db
			}
		}
		respond "Not Found" 404
	}
}
`

// oracleMercureCORSStar: the docs allow cors_origins * only on a fully
// anonymous hub.
const oracleMercureCORSStar = `http://127.0.0.1:{PORT} {
	route {
		mercure {
			issuer ` + oracleIssuer + ` {
				publisher {
					jwt ` + oraclePubKey + ` HS256
				}
			}
			resource_identifier http://127.0.0.1:{PORT}/.well-known/mercure
			anonymous
			cors_origins *
			cookie_name mercure_access_token
			heartbeat 100ms
			transport bolt {
				path {DIR}/mercure.db
			}
		}
		respond "Not Found" 404
	}
}
`

// asSSEMercure is a Mercure Caddyfile with the directive renamed: the
// promise that a Mercure user's Caddyfile works with mercure renamed to
// sse_mercure (issue 16), plus the matcher a Caddy handler needs to be
// handed the hub's paths (Mercure's directive takes every request and
// passes on the others).
func asSSEMercure(cfg string) string {
	const from = "\troute {\n\t\tmercure {"
	if !strings.Contains(cfg, from) {
		panic("asSSEMercure: no mercure block in a route")
	}
	return strings.Replace(cfg, from, "\t@mercure path /.well-known/mercure /.well-known/mercure/* /.well-known/oauth-protected-resource/*\n\troute {\n\t\tsse_mercure @mercure {", 1)
}

// oracleCompatHubs: Mercure 0.24.2's configuration (0.x directives) and
// sse_mercure in compatibility mode.
var oracleCompatHubs = map[string]oracleHubConfig{
	"main": {
		mercure: `http://127.0.0.1:{PORT} {
	route {
		mercure {
			publisher_jwt ` + oraclePubKey + ` HS256
			subscriber_jwt ` + oracleSubKey + ` HS256
			anonymous
			subscriptions
			cors_origins ` + oracleApp + `
			publish_origins ` + oracleApp + `
			heartbeat 100ms
			transport bolt {
				path {DIR}/mercure.db
			}
		}
		respond "Not Found" 404
	}
}
`,
		ours: `http://127.0.0.1:{PORT} {
	@mercure path /.well-known/mercure /.well-known/mercure/*
	sse_mercure @mercure {
		publisher_jwt ` + oraclePubKey + `
		subscriber_jwt ` + oracleSubKey + `
		anonymous
		subscriptions
		origins ` + oracleApp + `
		publish_origins ` + oracleApp + `
		heartbeat 100ms
		protocol_version_compatibility 8
	}
	respond "Not Found" 404
}
`,
	},
}

// signOracle signs claims with key; typ at+jwt unless noTyp.
func signOracle(key string, noTyp bool, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if !noTyp {
		tok.Header["typ"] = "at+jwt"
	}
	s, err := tok.SignedString([]byte(key))
	if err != nil {
		panic(err)
	}
	return s
}

const mercureDetail = "https://mercure.rocks/authorization-detail"

// detail is one authorization_details entry.
func detail(actions []string, topics ...any) map[string]any {
	return map[string]any{"type": mercureDetail, "actions": actions, "topics": topics}
}

func exact(m string) map[string]any { return map[string]any{"match": m, "match_type": "exact"} }
func urlpat(m string) map[string]any {
	return map[string]any{"match": m, "match_type": "urlpattern"}
}

// oracleModernTokens mints the 1.0 token shapes for a hub at base. Every
// token expires in an hour unless its name says otherwise.
func oracleModernTokens(base string) map[string]string {
	aud := base + "/.well-known/mercure"
	exp := time.Now().Add(time.Hour).Unix()
	std := func(details ...any) jwt.MapClaims {
		return jwt.MapClaims{"iss": oracleIssuer, "aud": aud, "exp": exp, "sub": "oracle-user", "authorization_details": details}
	}
	with := func(c jwt.MapClaims, edit func(jwt.MapClaims)) jwt.MapClaims { edit(c); return c }
	pub := []string{"publish"}
	sub := []string{"subscribe"}
	many := make([]any, 100)
	for i := range many {
		many[i] = exact(fmt.Sprintf("https://example.com/many/%d", i))
	}
	many[99] = exact("*")
	return map[string]string{
		"pub":            signOracle(oraclePubKey, false, std(detail(pub, exact("*")))),
		"pub-urlpattern": signOracle(oraclePubKey, false, std(detail(pub, urlpat("https://example.com/oracle/*")))),
		"pub-scoped":     signOracle(oraclePubKey, false, std(detail(pub, urlpat("https://example.com/oracle/token/scoped-in/*")))),
		"pub-relative":   signOracle(oraclePubKey, false, std(detail(pub, urlpat("/oracle/*")))),
		"sub":            signOracle(oracleSubKey, false, std(detail(sub, exact("*")))),
		"sub-payload":    signOracle(oracleSubKey, false, std(with(detail(sub, exact("*")), func(c jwt.MapClaims) { c["payload"] = map[string]any{"user": "alice"} }))),
		"sub-subs": signOracle(oracleSubKey, false, std(detail(sub,
			urlpat("/.well-known/mercure/subscriptions/*"), exact("/.well-known/mercure/subscriptions"), exact("*")))),
		"pub-no-typ":       signOracle(oraclePubKey, true, std(detail(pub, exact("*")))),
		"pub-wrong-aud":    signOracle(oraclePubKey, false, with(std(detail(pub, exact("*"))), func(c jwt.MapClaims) { c["aud"] = "https://other.example/.well-known/mercure" })),
		"pub-no-aud":       signOracle(oraclePubKey, false, with(std(detail(pub, exact("*"))), func(c jwt.MapClaims) { delete(c, "aud") })),
		"pub-no-exp":       signOracle(oraclePubKey, false, with(std(detail(pub, exact("*"))), func(c jwt.MapClaims) { delete(c, "exp") })),
		"pub-expired":      signOracle(oraclePubKey, false, with(std(detail(pub, exact("*"))), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
		"pub-no-iss":       signOracle(oraclePubKey, false, with(std(detail(pub, exact("*"))), func(c jwt.MapClaims) { delete(c, "iss") })),
		"pub-wrong-iss":    signOracle(oraclePubKey, false, with(std(detail(pub, exact("*"))), func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
		"pub-future-iat":   signOracle(oraclePubKey, false, with(std(detail(pub, exact("*"))), func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })),
		"pub-wrong-key":    signOracle(oracleSubKey, false, std(detail(pub, exact("*")))),
		"pub-bad-match":    signOracle(oraclePubKey, false, std(detail(pub, map[string]any{"match": "*", "match_type": "regex"}))),
		"pub-upper-match":  signOracle(oraclePubKey, false, std(detail(pub, map[string]any{"match": "*", "match_type": "Exact"}))),
		"pub-default-type": signOracle(oraclePubKey, false, std(detail(pub, map[string]any{"match": "*"}))),
		"pub-star-pattern": signOracle(oraclePubKey, false, std(detail(pub, urlpat("*")))),
		"pub-unknown-act":  signOracle(oraclePubKey, false, std(detail([]string{"publish", "frobnicate"}, exact("*")))),
		"pub-only-unknown": signOracle(oraclePubKey, false, std(detail([]string{"frobnicate"}, exact("*")))),
		"pub-bare-string":  signOracle(oraclePubKey, false, std(map[string]any{"type": mercureDetail, "actions": pub, "topics": []any{"*"}})),
		"pub-other-type":   signOracle(oraclePubKey, false, std(map[string]any{"type": "mercure", "actions": pub, "topics": []any{exact("*")}})),
		"pub-100-topics":   signOracle(oraclePubKey, false, std(detail(pub, many...))),
		"pub-legacy":       signOracle(oraclePubKey, true, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}),
		"pub-legacy-at":    signOracle(oraclePubKey, false, jwt.MapClaims{"iss": oracleIssuer, "aud": aud, "exp": exp, "mercure": map[string]any{"publish": []string{"*"}}}),
		"sub-legacy":       signOracle(oracleSubKey, true, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"*"}}}),
		"sub-no-typ":       signOracle(oracleSubKey, true, std(detail(sub, exact("*")))),
		"sub-expired":      signOracle(oracleSubKey, false, with(std(detail(sub, exact("*"))), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
	}
}

// oracleCompatTokens mints the 0.x token shapes (typ JWT, the mercure
// claim, no aud, no exp) for Mercure 0.24.2 and compatibility mode.
func oracleCompatTokens(base string) map[string]string {
	m := func(key string, claim map[string]any) string {
		return signOracle(key, true, jwt.MapClaims{"mercure": claim})
	}
	return map[string]string{
		"pub":           m(oraclePubKey, map[string]any{"publish": []string{"*"}}),
		"pub-template":  m(oraclePubKey, map[string]any{"publish": []string{"https://example.com/oracle/{+rest}"}}),
		"pub-narrow":    m(oraclePubKey, map[string]any{"publish": []string{"https://example.com/elsewhere"}}),
		"pub-string":    signOracle(oraclePubKey, true, jwt.MapClaims{"mercure": "not-an-object"}),
		"pub-expired":   signOracle(oraclePubKey, true, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "mercure": map[string]any{"publish": []string{"*"}}}),
		"pub-wrong-key": signOracle(oracleSubKey, true, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}}),
		"sub":           m(oracleSubKey, map[string]any{"subscribe": []string{"*"}}),
		"sub-payload":   m(oracleSubKey, map[string]any{"subscribe": []string{"*"}, "payload": map[string]any{"user": "alice"}}),
		"sub-subs":      m(oracleSubKey, map[string]any{"subscribe": []string{"*", "/.well-known/mercure/subscriptions{/topic}{/subscriber}"}}),
		"sub-template":  m(oracleSubKey, map[string]any{"subscribe": []string{"https://example.com/oracle/{+rest}"}}),
	}
}

// Step builders, to keep the table readable.

const hubPath = "/.well-known/mercure"

func publishStep(token string, form ...string) oStep {
	s := oStep{Method: "POST", Path: hubPath, Form: form}
	if token != "" {
		s.Header = []string{"Authorization: Bearer {TOKEN:" + token + "}"}
	}
	return s
}

func subscribeStep(token string, events int, query ...string) oStep {
	s := oStep{Path: hubPath, Query: query, Events: events}
	if token != "" {
		s.Header = []string{"Authorization: Bearer {TOKEN:" + token + "}"}
	}
	return s
}

// open is s left open while the next steps run.
func open(s oStep) oStep { s.Open = true; return s }

func withHeader(s oStep, h ...string) oStep {
	s.Header = append(append([]string(nil), s.Header...), h...)
	return s
}

// topics returns n topic fields of the case.
func manyPairs(key string, n int, value func(i int) string) []string {
	var kv []string
	for i := 0; i < n; i++ {
		kv = append(kv, key, value(i))
	}
	return kv
}

// oracleModernCases is the table for modern mode (Mercure 1.0).
func oracleModernCases() []oCase {
	pubOK := func(extra ...string) oStep {
		return publishStep("pub", append([]string{"topic", "{T}", "data", "hello"}, extra...)...)
	}
	cases := []oCase{
		// Publishing: what the spec validates.
		{Name: "publish/plain", Hub: "main", Why: "a valid publish answers 200 and the id", Steps: []oStep{pubOK()}},
		{Name: "publish/given-id", Hub: "main", Why: "a publisher-chosen id is kept", Steps: []oStep{pubOK("id", "lit-given-1")}},
		{Name: "publish/type-mercure", Hub: "main", Why: "type=mercure is reserved", Steps: []oStep{pubOK("type", "mercure")}},
		{Name: "publish/type-custom", Hub: "main", Why: "a custom type is fine", Steps: []oStep{pubOK("type", "custom")}},
		{Name: "publish/id-earliest", Hub: "main", Why: "id=earliest is reserved", Steps: []oStep{pubOK("id", "earliest")}},
		{Name: "publish/id-hash", Hub: "main", Why: "an id starting with #", Steps: []oStep{pubOK("id", "#lit-frag")}},
		{Name: "publish/id-inner-hash", Hub: "main", Why: "an id containing #", Steps: []oStep{pubOK("id", "lit-a#b")}},
		{Name: "publish/topic-star", Hub: "main", Why: "a * topic is refused", Steps: []oStep{publishStep("pub", "topic", "*", "data", "x")}},
		{Name: "publish/id-control", Hub: "main", Why: "a control character in id", Steps: []oStep{pubOK("id", "lit-a\x01b")}},
		{Name: "publish/id-newline", Hub: "main", Why: "a newline in id", Steps: []oStep{pubOK("id", "lit-a\nb")}},
		{Name: "publish/id-cf", Hub: "main", Why: "a Cf character (U+202E) in id", Steps: []oStep{pubOK("id", "lit-a\u202eb")}},
		{Name: "publish/type-control", Hub: "main", Why: "a control character in type", Steps: []oStep{pubOK("type", "a\x01b")}},
		{Name: "publish/type-cf", Hub: "main", Why: "a Cf character in type", Steps: []oStep{pubOK("type", "a\u200bb")}},
		{Name: "publish/topic-cf", Hub: "main", Why: "a Cf character in the topic", Steps: []oStep{publishStep("pub", "topic", "{T}/a\u202eb", "data", "x")}},
		{Name: "publish/topic-control", Hub: "main", Why: "a control character in the topic", Steps: []oStep{publishStep("pub", "topic", "{T}/a\x01b", "data", "x")}},
		{Name: "publish/data-cf", Hub: "main", Why: "Cf characters in data are data", Steps: []oStep{publishStep("pub", "topic", "{T}", "data", "a\u202eb")}},
		{Name: "publish/reserved-absolute", Hub: "main", Why: "the reserved namespace, absolute", Steps: []oStep{publishStep("pub", "topic", "{BASE}/.well-known/mercure/x", "data", "x")}},
		{Name: "publish/reserved-relative", Hub: "main", Why: "the reserved namespace, relative", Steps: []oStep{publishStep("pub", "topic", "/.well-known/mercure/x", "data", "x")}},
		{Name: "publish/reserved-subscriptions", Hub: "main", Why: "forging a subscription event", Steps: []oStep{publishStep("pub", "topic", "/.well-known/mercure/subscriptions/exact/x/y", "data", "x")}},
		{Name: "publish/reserved-backslash", Hub: "main", Why: `\.well-known\mercure\x resolves into the namespace (WHATWG)`, Steps: []oStep{publishStep("pub", "topic", `\.well-known\mercure\x`, "data", "x")}},
		{Name: "publish/reserved-encoded", Hub: "main", Why: "/.well-known/%6Dercure/x", Steps: []oStep{publishStep("pub", "topic", "/.well-known/%6Dercure/x", "data", "x")}},
		{Name: "publish/reserved-dotdot", Hub: "main", Why: "/a/../.well-known/mercure/x", Steps: []oStep{publishStep("pub", "topic", "/a/../.well-known/mercure/x", "data", "x")}},
		{Name: "publish/reserved-other-host", Hub: "main", Why: "another host's /.well-known/mercure is not ours", Steps: []oStep{publishStep("pub", "topic", "https://other.example/.well-known/mercure/x", "data", "x")}},
		{Name: "publish/duplicate-id", Hub: "main", Why: "a reused id", Steps: []oStep{pubOK("id", "lit-dup-1"), pubOK("id", "lit-dup-1")}},
		{Name: "publish/1000-topics", Hub: "main", Why: "1,000 topics per update are accepted", Steps: []oStep{publishStep("pub", append(manyPairs("topic", 1000, func(i int) string { return fmt.Sprintf("{T}/%d", i) }), "data", "x")...)}},
		{Name: "publish/1001-topics", Hub: "main", Why: "1,001 topics are refused", Steps: []oStep{publishStep("pub", append(manyPairs("topic", 1001, func(i int) string { return fmt.Sprintf("{T}/%d", i) }), "data", "x")...)}},
		{Name: "publish/long-topic", Hub: "main", Why: "a 10 KB topic (no per-field cap below the body limit)", Steps: []oStep{publishStep("pub", "topic", "{T}/"+strings.Repeat("a", 10000), "data", "x")}},
		{Name: "publish/missing-topic", Hub: "main", Why: "no topic", Steps: []oStep{publishStep("pub", "data", "x")}},
		{Name: "publish/empty-topic", Hub: "main", Why: "an empty topic", Steps: []oStep{publishStep("pub", "topic", "", "data", "x")}},
		{Name: "publish/retry-digits", Hub: "main", Why: "retry in digits", Steps: []oStep{pubOK("retry", "1500")}},
		{Name: "publish/retry-not-digits", Hub: "main", Why: "retry not digits", Steps: []oStep{pubOK("retry", "1.5s")}},
		{Name: "publish/retry-negative", Hub: "main", Why: "retry negative", Steps: []oStep{pubOK("retry", "-1")}},
		{Name: "publish/private", Hub: "main", Why: "private=on", Steps: []oStep{pubOK("private", "on")}},
		{Name: "publish/no-token", Hub: "main", Why: "publishing needs a token: 401 with a resource_metadata challenge", Steps: []oStep{publishStep("", "topic", "{T}", "data", "x")}},
		{Name: "publish/json-body", Hub: "main", Why: "a JSON body is not a form", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Bearer {TOKEN:pub}", "Content-Type: application/json"}, Body: `{"topic":"{T}","data":"x"}`}}},
		{Name: "publish/alternate-topics", Hub: "main", Why: "canonical and alternate topics", Steps: []oStep{
			open(subscribeStep("sub", 1, "match", "{T}/alt")),
			publishStep("pub", "topic", "{T}/canonical", "topic", "{T}/alt", "data", "x", "id", "lit-alt-1"),
		}},
		{Name: "publish/wrong-method", Hub: "main", Why: "PUT on the hub", Steps: []oStep{{Method: "PUT", Path: hubPath, Header: []string{"Authorization: Bearer {TOKEN:pub}"}}}},

		// Tokens of every shape (publishing).
		{Name: "token/modern", Hub: "main", Why: "a modern token", Steps: []oStep{publishStep("pub", "topic", "{T}", "data", "x")}},
		{Name: "token/urlpattern", Hub: "main", Why: "a urlpattern grant", Steps: []oStep{publishStep("pub-urlpattern", "topic", "{T}", "data", "x")}},
		{Name: "token/scoped-out", Hub: "main", Why: "a grant that does not cover the topic", Steps: []oStep{publishStep("pub-scoped", "topic", "https://example.com/elsewhere", "data", "x")}},
		{Name: "token/scoped-in", Hub: "main", Why: "a grant that covers the topic", Steps: []oStep{publishStep("pub-scoped", "topic", "{T}/x", "data", "x")}},
		{Name: "token/relative-pattern", Hub: "main", Why: "a relative pattern resolves against the resource identifier", Steps: []oStep{publishStep("pub-relative", "topic", "{BASE}/oracle/x", "data", "x")}},
		{Name: "token/no-typ", Hub: "main", Why: "no typ: at+jwt", Steps: []oStep{publishStep("pub-no-typ", "topic", "{T}", "data", "x")}},
		{Name: "token/wrong-aud", Hub: "main", Why: "aud is another resource", Steps: []oStep{publishStep("pub-wrong-aud", "topic", "{T}", "data", "x")}},
		{Name: "token/no-aud", Hub: "main", Why: "no aud", Steps: []oStep{publishStep("pub-no-aud", "topic", "{T}", "data", "x")}},
		{Name: "token/no-exp", Hub: "main", Why: "no exp", Steps: []oStep{publishStep("pub-no-exp", "topic", "{T}", "data", "x")}},
		{Name: "token/expired", Hub: "main", Why: "expired", Steps: []oStep{publishStep("pub-expired", "topic", "{T}", "data", "x")}},
		{Name: "token/no-iss", Hub: "main", Why: "no iss", Steps: []oStep{publishStep("pub-no-iss", "topic", "{T}", "data", "x")}},
		{Name: "token/wrong-iss", Hub: "main", Why: "an unknown iss", Steps: []oStep{publishStep("pub-wrong-iss", "topic", "{T}", "data", "x")}},
		{Name: "token/future-iat", Hub: "main", Why: "iat is not enforced", Steps: []oStep{publishStep("pub-future-iat", "topic", "{T}", "data", "x")}},
		{Name: "token/wrong-key", Hub: "main", Why: "signed with the subscriber key", Steps: []oStep{publishStep("pub-wrong-key", "topic", "{T}", "data", "x")}},
		{Name: "token/unknown-match-type", Hub: "main", Why: "an unknown match_type rejects the token", Steps: []oStep{publishStep("pub-bad-match", "topic", "{T}", "data", "x")}},
		{Name: "token/upper-match-type", Hub: "main", Why: "match_type is case-sensitive", Steps: []oStep{publishStep("pub-upper-match", "topic", "{T}", "data", "x")}},
		{Name: "token/default-match-type", Hub: "main", Why: "match_type defaults to exact", Steps: []oStep{publishStep("pub-default-type", "topic", "{T}", "data", "x")}},
		{Name: "token/star-urlpattern", Hub: "main", Why: "* is the wildcard under urlpattern too", Steps: []oStep{publishStep("pub-star-pattern", "topic", "{T}", "data", "x")}},
		{Name: "token/unknown-action", Hub: "main", Why: "an unknown action beside publish is ignored", Steps: []oStep{publishStep("pub-unknown-act", "topic", "{T}", "data", "x")}},
		{Name: "token/only-unknown-action", Hub: "main", Why: "an unknown action alone grants nothing", Steps: []oStep{publishStep("pub-only-unknown", "topic", "{T}", "data", "x")}},
		{Name: "token/bare-string-topic", Hub: "main", Why: "bare string topics are rejected", Steps: []oStep{publishStep("pub-bare-string", "topic", "{T}", "data", "x")}},
		{Name: "token/other-detail-type", Hub: "main", Why: `a detail of type "mercure" grants nothing`, Steps: []oStep{publishStep("pub-other-type", "topic", "{T}", "data", "x")}},
		{Name: "token/100-topics", Hub: "main", Why: "a token with 100 topics", Steps: []oStep{publishStep("pub-100-topics", "topic", "{T}", "data", "x")}},
		{Name: "token/legacy-claim", Hub: "main", Why: "the 0.x mercure claim, modern mode", Steps: []oStep{publishStep("pub-legacy", "topic", "{T}", "data", "x")}},
		{Name: "token/legacy-claim-at", Hub: "main", Why: "the mercure claim in an otherwise valid access token", Steps: []oStep{publishStep("pub-legacy-at", "topic", "{T}", "data", "x")}},
		{Name: "token/query-access-token", Hub: "main", Why: "no token in the query string", Steps: []oStep{{Method: "POST", Path: hubPath, Query: []string{"access_token", "{TOKEN:pub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/query-authorization", Hub: "main", Why: "the 0.x authorization query parameter", Steps: []oStep{{Method: "POST", Path: hubPath, Query: []string{"authorization", "{TOKEN:pub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/two-bearer", Hub: "main", Why: "two Authorization headers", Steps: []oStep{withHeader(publishStep("pub", "topic", "{T}", "data", "x"), "Authorization: Bearer {TOKEN:pub}")}},
		{Name: "token/basic", Hub: "main", Why: "the Basic scheme", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Basic dXNlcjpwYXNz"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/bearer-empty", Hub: "main", Why: "Bearer without a token", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Bearer"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/garbage", Hub: "main", Why: "a token that is not a JWT", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Bearer not.a.jwt"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/cookie-same-origin", Hub: "main", Why: "the configured cookie, no Origin", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Cookie: mercure_access_token={TOKEN:pub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/cookie-listed-origin", Hub: "main", Why: "the cookie with a publish origin", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Cookie: mercure_access_token={TOKEN:pub}", "Origin: " + oracleApp}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/cookie-cross-origin", Hub: "main", Why: "the cookie with an unlisted Origin: 400 invalid_request", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Cookie: mercure_access_token={TOKEN:pub}", "Origin: https://evil.example"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/cookie-secure-name", Hub: "main", Why: "__Secure-mercure_access_token is not the configured name", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Cookie: __Secure-mercure_access_token={TOKEN:pub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/cookie-0x-name", Hub: "main", Why: "the 0.x mercureAuthorization cookie", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Cookie: mercureAuthorization={TOKEN:pub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/header-and-cookie", Hub: "main", Why: "the header wins over a bad cookie", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Bearer {TOKEN:pub}", "Cookie: mercure_access_token=bad"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/subscriber-token-publish", Hub: "main", Why: "a subscribe grant does not publish", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Bearer {TOKEN:sub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},

		// Subscribing.
		{Name: "subscribe/match", Hub: "main", Why: "match= and the first event", Steps: []oStep{
			open(subscribeStep("", 1, "match", "{T}")), pubOK("id", "lit-s1"),
		}},
		{Name: "subscribe/match-exact", Hub: "main", Why: "match_exact=", Steps: []oStep{
			open(subscribeStep("", 1, "match_exact", "{T}")), pubOK("id", "lit-s2"),
		}},
		{Name: "subscribe/match-urlpattern", Hub: "main", Why: "match_urlpattern=", Steps: []oStep{
			open(subscribeStep("", 1, "match_urlpattern", "{T}/*")),
			publishStep("pub", "topic", "{T}/x", "data", "y", "id", "lit-s3"),
		}},
		{Name: "subscribe/matchURLPattern", Hub: "main", Why: "the draft's camel-case name", Steps: []oStep{subscribeStep("", 0, "matchURLPattern", "{T}/*")}},
		{Name: "subscribe/Match", Hub: "main", Why: "Match= (case-sensitive)", Steps: []oStep{subscribeStep("", 0, "Match", "{T}")}},
		{Name: "subscribe/match-other", Hub: "main", Why: "an unknown match_ name", Steps: []oStep{subscribeStep("", 0, "match_regex", ".*")}},
		{Name: "subscribe/topic", Hub: "main", Why: "topic= in modern mode", Steps: []oStep{subscribeStep("", 0, "topic", "{T}")}},
		{Name: "subscribe/none", Hub: "main", Why: "no matcher", Steps: []oStep{subscribeStep("", 0)}},
		{Name: "subscribe/star", Hub: "main", Why: "match=* anonymously", Steps: []oStep{subscribeStep("", 0, "match", "*")}},
		{Name: "subscribe/cf", Hub: "main", Why: "a Cf character in a matcher", Steps: []oStep{subscribeStep("", 0, "match", "{T}\u202e")}},
		{Name: "subscribe/control", Hub: "main", Why: "a control character in a matcher", Steps: []oStep{subscribeStep("", 0, "match", "{T}\x01")}},
		{Name: "subscribe/100-matchers", Hub: "main", Why: "100 matchers", Steps: []oStep{subscribeStep("", 0, manyPairs("match", 100, func(i int) string { return fmt.Sprintf("{T}/%d", i) })...)}},
		{Name: "subscribe/101-matchers", Hub: "main", Why: "101 matchers", Steps: []oStep{subscribeStep("", 0, manyPairs("match", 101, func(i int) string { return fmt.Sprintf("{T}/%d", i) })...)}},
		{Name: "subscribe/4096-matcher", Hub: "main", Why: "a 4,096-byte matcher", Steps: []oStep{subscribeStep("", 0, "match", "https://example.com/"+strings.Repeat("a", 4096-len("https://example.com/")))}},
		{Name: "subscribe/4097-matcher", Hub: "main", Why: "a 4,097-byte matcher", Steps: []oStep{subscribeStep("", 0, "match", "https://example.com/"+strings.Repeat("a", 4097-len("https://example.com/")))}},
		{Name: "subscribe/bad-urlpattern", Hub: "main", Why: "a URL pattern that does not compile", Steps: []oStep{subscribeStep("", 0, "match_urlpattern", "https://example.com/(")}},
		{Name: "subscribe/regexp-group", Hub: "main", Why: "a regexp group in a URL pattern", Steps: []oStep{subscribeStep("", 0, "match_urlpattern", "https://example.com/:id(\\d+)")}},
		{Name: "subscribe/query-method", Hub: "main", Why: "QUERY with a form body", Steps: []oStep{
			open(oStep{Method: "QUERY", Path: hubPath, Form: []string{"match", "{T}"}, Events: 1}), pubOK("id", "lit-q1"),
		}},
		{Name: "subscribe/query-method-json", Hub: "main", Why: "QUERY with a JSON body", Steps: []oStep{{Method: "QUERY", Path: hubPath, Header: []string{"Content-Type: application/json"}, Body: `{"match":"{T}"}`}}},
		{Name: "subscribe/query-method-and-query", Hub: "main", Why: "QUERY with matchers in both the URL and the body", Steps: []oStep{{Method: "QUERY", Path: hubPath, Query: []string{"match", "{T}/a"}, Form: []string{"match", "{T}/b"}}}},
		{Name: "subscribe/last-event-id-found", Hub: "main", Why: "resuming from a known id: Mercure-Last-Event-ID echoes it", Steps: []oStep{
			pubOK("id", "lit-r1"), pubOK("id", "lit-r2"), pubOK("id", "lit-r3"),
			withHeader(subscribeStep("", 2, "match", "{T}"), "Last-Event-ID: lit-r1"),
		}},
		{Name: "subscribe/last-event-id-query", Hub: "main", Why: "last_event_id in the query", Steps: []oStep{
			pubOK("id", "lit-rq1"), pubOK("id", "lit-rq2"),
			subscribeStep("", 1, "match", "{T}", "last_event_id", "lit-rq1"),
		}},
		{Name: "subscribe/last-event-id-camel", Hub: "main", Why: "lastEventID (the 0.x name) in the query", Steps: []oStep{
			pubOK("id", "lit-rc1"), pubOK("id", "lit-rc2"),
			subscribeStep("", 1, "match", "{T}", "lastEventID", "lit-rc1"),
		}},
		{Name: "subscribe/last-event-id-not-found", Hub: "main", Why: "resuming from an unknown id", Steps: []oStep{
			pubOK("id", "lit-n1"),
			withHeader(subscribeStep("", 1, "match", "{T}"), "Last-Event-ID: lit-unknown"),
		}},
		{Name: "subscribe/last-event-id-earliest", Hub: "main", Why: "earliest", Steps: []oStep{
			pubOK("id", "lit-e1"), pubOK("id", "lit-e2"),
			subscribeStep("", 2, "match", "{T}", "last_event_id", "earliest"),
		}},
		{Name: "subscribe/last-event-id-other-topic", Hub: "main", Why: "resuming from an id of an update on another topic", Steps: []oStep{
			pubOK("id", "lit-o1"), publishStep("pub", "topic", "{T}/other", "data", "o", "id", "lit-o2"), pubOK("id", "lit-o3"),
			withHeader(subscribeStep("", 1, "match", "{T}"), "Last-Event-ID: lit-o2"),
		}},
		{Name: "subscribe/private-anonymous", Hub: "main", Why: "an anonymous subscriber does not get a private update", Steps: []oStep{
			open(subscribeStep("", 1, "match", "{T}")), pubOK("private", "on", "id", "lit-p1"), pubOK("id", "lit-p2"),
		}},
		{Name: "subscribe/private-token", Hub: "main", Why: "a subscriber with a grant gets a private update", Steps: []oStep{
			open(subscribeStep("sub", 1, "match", "{T}")), pubOK("private", "on", "id", "lit-pt1"),
		}},
		{Name: "subscribe/token-query", Hub: "main", Why: "a token in the query string (modern: refused or ignored)", Steps: []oStep{subscribeStep("", 0, "match", "{T}", "access_token", "{TOKEN:sub}")}},
		{Name: "subscribe/token-authorization-query", Hub: "main", Why: "the 0.x authorization query parameter", Steps: []oStep{subscribeStep("", 0, "match", "{T}", "authorization", "{TOKEN:sub}")}},
		{Name: "subscribe/token-cookie", Hub: "main", Why: "the configured cookie", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Cookie: mercure_access_token={TOKEN:sub}")}},
		{Name: "subscribe/token-cookie-cross-origin", Hub: "main", Why: "the cookie from an unlisted origin", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Cookie: mercure_access_token={TOKEN:sub}", "Origin: https://evil.example")}},
		{Name: "subscribe/token-legacy", Hub: "main", Why: "a 0.x subscriber token in modern mode", Steps: []oStep{subscribeStep("sub-legacy", 0, "match", "{T}")}},
		{Name: "subscribe/token-no-typ", Hub: "main", Why: "a subscriber token without typ", Steps: []oStep{subscribeStep("sub-no-typ", 0, "match", "{T}")}},
		{Name: "subscribe/token-expired", Hub: "main", Why: "an expired subscriber token", Steps: []oStep{subscribeStep("sub-expired", 0, "match", "{T}")}},
		{Name: "subscribe/publisher-token", Hub: "main", Why: "a publisher's token on subscribe (other key)", Steps: []oStep{subscribeStep("pub", 0, "match", "{T}")}},
		{Name: "subscribe/basic", Hub: "main", Why: "Basic scheme on subscribe", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Authorization: Basic dXNlcjpwYXNz")}},

		// Subscription events.
		{Name: "subscriptions/event", Hub: "main", Why: "the subscription event a new subscriber causes", Steps: []oStep{
			open(subscribeStep("sub-subs", 1, "match_urlpattern", "/.well-known/mercure/subscriptions/exact/{TQ}/:subscriber")),
			open(subscribeStep("sub-payload", 0, "match", "{T}")),
		}},
		{Name: "subscriptions/event-anonymous", Hub: "main", Why: "subscription events are private: an anonymous listener gets none", Steps: []oStep{
			open(subscribeStep("", 1, "match_urlpattern", "/.well-known/mercure/subscriptions/exact/{TQ}/:subscriber")),
			open(subscribeStep("", 0, "match", "{T}")),
			pubOK("id", "lit-ea1"),
		}},
	}

	// The subscriptions API, each on a hub of its own so that the
	// collection lists only what the case opened.
	api := []oCase{
		{Name: "api/collection", Why: "the collection, its Link cursor and content type", Steps: []oStep{
			open(subscribeStep("sub-payload", 0, "match", "{T}")),
			{Path: hubPath + "/subscriptions", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
		}},
		{Name: "api/per-matcher", Why: "/subscriptions/exact/{match}", Steps: []oStep{
			open(subscribeStep("sub-payload", 0, "match", "{T}")),
			{Path: hubPath + "/subscriptions/exact/{TQ}", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
		}},
		{Name: "api/single", Why: "/subscriptions/exact/{match}/{subscriber}", Steps: []oStep{
			open(subscribeStep("sub-payload", 0, "match", "{T}")),
			{Path: hubPath + "/subscriptions/exact/{TQ}", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
			{Path: hubPath + "/subscriptions/exact/{TQ}/{SUB}", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
		}},
		{Name: "api/404", Why: "an unknown subscription", Steps: []oStep{
			{Path: hubPath + "/subscriptions/exact/{TQ}/urn%3Auuid%3A00000000-0000-0000-0000-000000000000", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
		}},
		{Name: "api/anonymous", Why: "the API without a token", Steps: []oStep{{Path: hubPath + "/subscriptions"}}},
		{Name: "api/etag", Why: "ETag and If-None-Match", Steps: []oStep{
			{Path: hubPath + "/subscriptions", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
			{Path: hubPath + "/subscriptions", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}", "If-None-Match: {ETAG}"}},
			{Path: hubPath + "/subscriptions", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}", "If-None-Match: *"}},
		}},
		{Name: "api/old-shape", Why: "the 0.x /subscriptions/{topic} route in modern mode", Steps: []oStep{
			{Path: hubPath + "/subscriptions/{TQ}", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
		}},
	}
	for i := range api {
		api[i].Hub = "main#" + api[i].Name
	}
	cases = append(cases, api...)

	cases = append(cases,
		// CORS.
		oCase{Name: "cors/preflight-query", Hub: "main", Why: "a preflight for QUERY from a listed origin", Steps: []oStep{{Method: "OPTIONS", Path: hubPath, Header: []string{"Origin: " + oracleApp, "Access-Control-Request-Method: QUERY", "Access-Control-Request-Headers: content-type, authorization"}}}},
		oCase{Name: "cors/preflight-query-auth", Hub: "main", Why: "a preflight for QUERY asking only for Authorization (a form Content-Type is safelisted)", Steps: []oStep{{Method: "OPTIONS", Path: hubPath, Header: []string{"Origin: " + oracleApp, "Access-Control-Request-Method: QUERY", "Access-Control-Request-Headers: authorization"}}}},
		oCase{Name: "cors/preflight-post", Hub: "main", Why: "a preflight for POST", Steps: []oStep{{Method: "OPTIONS", Path: hubPath, Header: []string{"Origin: " + oracleApp, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization"}}}},
		oCase{Name: "cors/preflight-unlisted", Hub: "main", Why: "a preflight from an unlisted origin", Steps: []oStep{{Method: "OPTIONS", Path: hubPath, Header: []string{"Origin: https://evil.example", "Access-Control-Request-Method: GET"}}}},
		oCase{Name: "cors/get-listed", Hub: "main", Why: "a subscribe from a listed origin", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Origin: "+oracleApp)}},
		oCase{Name: "cors/get-unlisted", Hub: "main", Why: "a subscribe from an unlisted origin", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Origin: https://evil.example")}},
		oCase{Name: "cors/get-null", Hub: "main", Why: "Origin: null with listed origins", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Origin: null")}},
		oCase{Name: "cors/star-get", Hub: "corsstar", Why: "cors_origins *: Allow-Origin * without credentials", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Origin: https://any.example")}},
		oCase{Name: "cors/star-null", Hub: "corsstar", Why: "cors_origins * and Origin: null (file://)", Steps: []oStep{withHeader(subscribeStep("", 0, "match", "{T}"), "Origin: null")}},
		oCase{Name: "cors/star-preflight", Hub: "corsstar", Why: "cors_origins * preflight", Steps: []oStep{{Method: "OPTIONS", Path: hubPath, Header: []string{"Origin: https://any.example", "Access-Control-Request-Method: QUERY"}}}},
		oCase{Name: "cors/star-publish", Hub: "corsstar", Why: "cors_origins * on a publish with a header token", Steps: []oStep{withHeader(publishStep("pub", "topic", "{T}", "data", "x"), "Origin: https://any.example")}},

		// Discovery.
		oCase{Name: "discovery/metadata", Hub: "main", Why: "the protected resource metadata document (RFC 9728)", Steps: []oStep{{Path: "/.well-known/oauth-protected-resource/.well-known/mercure"}}},
		oCase{Name: "discovery/metadata-root", Hub: "main", Why: "the metadata at the root well-known path", Steps: []oStep{{Path: "/.well-known/oauth-protected-resource"}}},
		oCase{Name: "discovery/subscribe-challenge", Hub: "main", Why: "a private-only request without a token", Steps: []oStep{{Path: hubPath + "/subscriptions"}}},
		oCase{Name: "discovery/head", Hub: "main", Why: "HEAD on the hub", Steps: []oStep{{Method: "HEAD", Path: hubPath, Query: []string{"match", "{T}"}}}},
	)
	return cases
}

// oracleCompatCases is the 0.x table: compatibility mode against 0.24.2.
func oracleCompatCases() []oCase {
	pubOK := func(extra ...string) oStep {
		return publishStep("pub", append([]string{"topic", "{T}", "data", "hello"}, extra...)...)
	}
	return []oCase{
		{Name: "publish/plain", Hub: "main", Why: "a 0.x publish", Steps: []oStep{pubOK()}},
		{Name: "publish/given-id", Hub: "main", Why: "a chosen id", Steps: []oStep{pubOK("id", "lit-given-1")}},
		{Name: "publish/duplicate-id", Hub: "main", Why: "a reused id", Steps: []oStep{pubOK("id", "lit-dup-1"), pubOK("id", "lit-dup-1")}},
		{Name: "publish/type-mercure", Hub: "main", Why: "type=mercure", Steps: []oStep{pubOK("type", "mercure")}},
		{Name: "publish/missing-topic", Hub: "main", Why: "no topic", Steps: []oStep{publishStep("pub", "data", "x")}},
		{Name: "publish/retry-not-digits", Hub: "main", Why: "retry not digits", Steps: []oStep{pubOK("retry", "1.5s")}},
		{Name: "publish/private", Hub: "main", Why: "private=on", Steps: []oStep{pubOK("private", "on")}},
		{Name: "publish/no-token", Hub: "main", Why: "no token", Steps: []oStep{publishStep("", "topic", "{T}", "data", "x")}},
		{Name: "token/template", Hub: "main", Why: "a URI template publish grant", Steps: []oStep{publishStep("pub-template", "topic", "{T}/x", "data", "x")}},
		{Name: "token/narrow", Hub: "main", Why: "a grant that does not cover the topic", Steps: []oStep{publishStep("pub-narrow", "topic", "{T}", "data", "x")}},
		{Name: "token/string-claim", Hub: "main", Why: "a mercure claim that is a string", Steps: []oStep{publishStep("pub-string", "topic", "{T}", "data", "x")}},
		{Name: "token/expired", Hub: "main", Why: "an expired 0.x token", Steps: []oStep{publishStep("pub-expired", "topic", "{T}", "data", "x")}},
		{Name: "token/wrong-key", Hub: "main", Why: "the wrong key", Steps: []oStep{publishStep("pub-wrong-key", "topic", "{T}", "data", "x")}},
		{Name: "token/query-authorization", Hub: "main", Why: "the authorization query parameter", Steps: []oStep{{Method: "POST", Path: hubPath, Query: []string{"authorization", "{TOKEN:pub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/cookie-0x", Hub: "main", Why: "the mercureAuthorization cookie", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Cookie: mercureAuthorization={TOKEN:pub}"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/cookie-cross-origin", Hub: "main", Why: "the cookie from an unlisted origin", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Cookie: mercureAuthorization={TOKEN:pub}", "Origin: https://evil.example"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "token/basic", Hub: "main", Why: "the Basic scheme", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Basic dXNlcjpwYXNz"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "subscribe/topic", Hub: "main", Why: "topic= and the first event", Steps: []oStep{
			open(subscribeStep("", 1, "topic", "{T}")), pubOK("id", "lit-s1"),
		}},
		{Name: "subscribe/template", Hub: "main", Why: "a URI template selector", Steps: []oStep{
			open(subscribeStep("", 1, "topic", "{T}/{id}")),
			publishStep("pub", "topic", "{T}/42", "data", "y", "id", "lit-s2"),
		}},
		{Name: "subscribe/star", Hub: "main", Why: "topic=*", Steps: []oStep{subscribeStep("", 0, "topic", "*")}},
		{Name: "subscribe/none", Hub: "main", Why: "no topic", Steps: []oStep{subscribeStep("", 0)}},
		{Name: "subscribe/last-event-id-found", Hub: "main", Why: "resuming from a known id", Steps: []oStep{
			pubOK("id", "lit-r1"), pubOK("id", "lit-r2"),
			withHeader(subscribeStep("", 1, "topic", "{T}"), "Last-Event-ID: lit-r1"),
		}},
		{Name: "subscribe/last-event-id-query", Hub: "main", Why: "lastEventID in the query", Steps: []oStep{
			pubOK("id", "lit-rq1"), pubOK("id", "lit-rq2"),
			subscribeStep("", 1, "topic", "{T}", "lastEventID", "lit-rq1"),
		}},
		{Name: "subscribe/last-event-id-earliest", Hub: "main", Why: "earliest", Steps: []oStep{
			pubOK("id", "lit-e1"), pubOK("id", "lit-e2"),
			subscribeStep("", 2, "topic", "{T}", "lastEventID", "earliest"),
		}},
		{Name: "subscribe/private-anonymous", Hub: "main", Why: "anonymous does not get a private update", Steps: []oStep{
			open(subscribeStep("", 1, "topic", "{T}")), pubOK("private", "on", "id", "lit-p1"), pubOK("id", "lit-p2"),
		}},
		{Name: "subscribe/private-token", Hub: "main", Why: "a 0.x subscriber gets a private update", Steps: []oStep{
			open(subscribeStep("sub", 1, "topic", "{T}")), pubOK("private", "on", "id", "lit-pt1"),
		}},
		{Name: "subscribe/private-template-token", Hub: "main", Why: "a template grant", Steps: []oStep{
			open(subscribeStep("sub-template", 1, "topic", "{T}")), pubOK("private", "on", "id", "lit-ptt1"),
		}},
		{Name: "subscribe/token-query", Hub: "main", Why: "the authorization query parameter on subscribe", Steps: []oStep{
			open(subscribeStep("", 1, "topic", "{T}", "authorization", "{TOKEN:sub}")), pubOK("private", "on", "id", "lit-tq1"),
		}},
		{Name: "subscribe/token-cookie", Hub: "main", Why: "the mercureAuthorization cookie on subscribe", Steps: []oStep{
			open(withHeader(subscribeStep("", 1, "topic", "{T}"), "Cookie: mercureAuthorization={TOKEN:sub}")), pubOK("private", "on", "id", "lit-tc1"),
		}},
		{Name: "subscriptions/event", Hub: "main", Why: "the 0.x subscription event", Steps: []oStep{
			open(subscribeStep("sub-subs", 1, "topic", "/.well-known/mercure/subscriptions/{TQ}{/subscriber}")),
			open(subscribeStep("sub-payload", 0, "topic", "{T}")),
		}},
		{Name: "api/per-topic", Hub: "main", Why: "the 0.x /subscriptions/{topic}", Steps: []oStep{
			open(subscribeStep("sub-payload", 0, "topic", "{T}")),
			{Path: hubPath + "/subscriptions/{TQ}", Header: []string{"Authorization: Bearer {TOKEN:sub-subs}"}},
		}},
		{Name: "api/anonymous", Hub: "main", Why: "the API without a token", Steps: []oStep{{Path: hubPath + "/subscriptions"}}},
		{Name: "cors/preflight", Hub: "main", Why: "a preflight from a listed origin", Steps: []oStep{{Method: "OPTIONS", Path: hubPath, Header: []string{"Origin: " + oracleApp, "Access-Control-Request-Method: GET", "Access-Control-Request-Headers: authorization"}}}},
		{Name: "cors/preflight-post", Hub: "main", Why: "a preflight for POST", Steps: []oStep{{Method: "OPTIONS", Path: hubPath, Header: []string{"Origin: " + oracleApp, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization"}}}},
		{Name: "cors/get-null", Hub: "main", Why: "Origin: null", Steps: []oStep{withHeader(subscribeStep("", 0, "topic", "{T}"), "Origin: null")}},

		// The 1.0 rows, as a 0.x hub answers them.
		{Name: "publish/id-earliest", Hub: "main", Why: "id=earliest", Steps: []oStep{pubOK("id", "earliest")}},
		{Name: "publish/id-hash", Hub: "main", Why: "an id starting with #", Steps: []oStep{pubOK("id", "#lit-frag")}},
		{Name: "publish/id-control", Hub: "main", Why: "a control character in id", Steps: []oStep{pubOK("id", "lit-a\x01b")}},
		{Name: "publish/id-cf", Hub: "main", Why: "a Cf character in id", Steps: []oStep{pubOK("id", "lit-a\u202eb")}},
		{Name: "publish/type-control", Hub: "main", Why: "a control character in type", Steps: []oStep{pubOK("type", "a\x01b")}},
		{Name: "publish/type-cf", Hub: "main", Why: "a Cf character in type", Steps: []oStep{pubOK("type", "a\u200bb")}},
		{Name: "publish/topic-star", Hub: "main", Why: "a * topic", Steps: []oStep{publishStep("pub", "topic", "*", "data", "x")}},
		{Name: "publish/topic-cf", Hub: "main", Why: "a Cf character in the topic", Steps: []oStep{publishStep("pub", "topic", "{T}/a\u202eb", "data", "x")}},
		{Name: "publish/reserved-relative", Hub: "main", Why: "the reserved namespace", Steps: []oStep{publishStep("pub", "topic", "/.well-known/mercure/x", "data", "x")}},
		{Name: "publish/reserved-backslash", Hub: "main", Why: "the backslash form", Steps: []oStep{publishStep("pub", "topic", `\.well-known\mercure\x`, "data", "x")}},
		{Name: "publish/1000-topics", Hub: "main", Why: "1,000 topics", Steps: []oStep{publishStep("pub", append(manyPairs("topic", 1000, func(i int) string { return fmt.Sprintf("{T}/%d", i) }), "data", "x")...)}},
		{Name: "publish/1001-topics", Hub: "main", Why: "1,001 topics", Steps: []oStep{publishStep("pub", append(manyPairs("topic", 1001, func(i int) string { return fmt.Sprintf("{T}/%d", i) }), "data", "x")...)}},
		{Name: "publish/long-topic", Hub: "main", Why: "a 10 KB topic", Steps: []oStep{publishStep("pub", "topic", "{T}/"+strings.Repeat("a", 10000), "data", "x")}},
		{Name: "publish/empty-topic", Hub: "main", Why: "an empty topic", Steps: []oStep{publishStep("pub", "topic", "", "data", "x")}},
		{Name: "publish/retry-digits", Hub: "main", Why: "retry in digits", Steps: []oStep{pubOK("retry", "1500")}},
		{Name: "publish/json-body", Hub: "main", Why: "a JSON body", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Bearer {TOKEN:pub}", "Content-Type: application/json"}, Body: `{"topic":"{T}","data":"x"}`}}},
		{Name: "token/modern", Hub: "main", Why: "a 1.0 access token", Steps: []oStep{publishStep("pub-modern", "topic", "{T}", "data", "x")}},
		{Name: "token/two-bearer", Hub: "main", Why: "two Authorization headers", Steps: []oStep{withHeader(publishStep("pub", "topic", "{T}", "data", "x"), "Authorization: Bearer {TOKEN:pub}")}},
		{Name: "token/garbage", Hub: "main", Why: "not a JWT", Steps: []oStep{{Method: "POST", Path: hubPath, Header: []string{"Authorization: Bearer not.a.jwt"}, Form: []string{"topic", "{T}", "data", "x"}}}},
		{Name: "subscribe/match", Hub: "main", Why: "the 1.0 match= in compatibility mode", Steps: []oStep{
			open(subscribeStep("", 1, "match", "{T}")), pubOK("id", "lit-m1"),
		}},
		{Name: "subscribe/cf", Hub: "main", Why: "a Cf character in a selector", Steps: []oStep{subscribeStep("", 0, "topic", "{T}\u202e")}},
		{Name: "subscribe/101-topics", Hub: "main", Why: "101 selectors", Steps: []oStep{subscribeStep("", 0, manyPairs("topic", 101, func(i int) string { return fmt.Sprintf("{T}/%d", i) })...)}},
		{Name: "subscribe/4097-topic", Hub: "main", Why: "a 4,097-byte selector", Steps: []oStep{subscribeStep("", 0, "topic", "https://example.com/"+strings.Repeat("a", 4097-len("https://example.com/")))}},
		{Name: "subscribe/query-method", Hub: "main", Why: "QUERY", Steps: []oStep{{Method: "QUERY", Path: hubPath, Form: []string{"topic", "{T}"}}}},
		{Name: "subscribe/last-event-id-not-found", Hub: "main", Why: "resuming from an unknown id", Steps: []oStep{
			pubOK("id", "lit-n1"),
			withHeader(subscribeStep("", 1, "topic", "{T}"), "Last-Event-ID: lit-unknown"),
		}},
		{Name: "discovery/metadata", Hub: "main", Why: "the 1.0 metadata document on a 0.x hub", Steps: []oStep{{Path: "/.well-known/oauth-protected-resource/.well-known/mercure"}}},
		{Name: "cors/get-listed", Hub: "main", Why: "a subscribe from a listed origin", Steps: []oStep{withHeader(subscribeStep("", 0, "topic", "{T}"), "Origin: "+oracleApp)}},
		{Name: "cors/get-unlisted", Hub: "main", Why: "a subscribe from an unlisted origin", Steps: []oStep{withHeader(subscribeStep("", 0, "topic", "{T}"), "Origin: https://evil.example")}},
	}
}
