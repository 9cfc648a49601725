package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mercure tokens and their presentation in modern mode (Mercure 1.0, the
// default) and in compatibility mode, on a real Caddy: the tokens Mercure's
// own tools make, the RFC 6750 answers, the protected resource metadata
// and the refusal logs.

// mercureDevKey is Mercure's documented development secret: its
// quickstart, `mercure-token --dev` and its conformance suite sign with it.
const mercureDevKey = "!ChangeThisMercureHubJWTSecretKey!"

// mercureConformanceToken is the publisher token of Mercure's conformance
// suite (conformance-tests/mercure.spec.ts), verbatim: HS256 over
// {"alg":"HS256","typ":"at+jwt"} and {"aud":"https://localhost/.well-known/mercure",
// "iss":"https://localhost","authorization_details":[publish *, subscribe *],
// "exp":4102444800}, signed with mercureDevKey (TestMercureConformanceTokenSignature
// checks that).
const mercureConformanceToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJhdWQiOiJodHRwczovL2xvY2FsaG9zdC8ud2VsbC1rbm93bi9tZXJjdXJlIiwiaXNzIjoiaHR0cHM6Ly9sb2NhbGhvc3QiLCJhdXRob3JpemF0aW9uX2RldGFpbHMiOlt7InR5cGUiOiJodHRwczovL21lcmN1cmUucm9ja3MvYXV0aG9yaXphdGlvbi1kZXRhaWwiLCJhY3Rpb25zIjpbInB1Ymxpc2giXSwidG9waWNzIjpbeyJtYXRjaCI6IioifV19LHsidHlwZSI6Imh0dHBzOi8vbWVyY3VyZS5yb2Nrcy9hdXRob3JpemF0aW9uLWRldGFpbCIsImFjdGlvbnMiOlsic3Vic2NyaWJlIl0sInRvcGljcyI6W3sibWF0Y2giOiIqIn1dfV0sImV4cCI6NDEwMjQ0NDgwMH0.z_S8IP5WZsCK8h3pcq0PB5zvJE0OdTrGA70khAYJQy4"

// The app's issuer and its key, for tokens shaped as `mercure-token` makes
// them.
const (
	mercureAppIssuer = "https://app.example.com"
	mercureAppKey    = "app-secret-0123456789abcdef012345"
)

// mercureAuthSite: on {PORT}, a hub whose resource identifier is pinned to
// the conformance suite's, trusting two issuers with distinct keys, its
// metadata routed to it by a second path of its matcher; on {PORT2}, a
// modern hub with a derived resource identifier and a compatibility-mode
// hub, both trusting the app's issuer only.
const mercureAuthSite = `:{PORT} {
	@mercure path /.well-known/mercure /.well-known/mercure/* /.well-known/oauth-protected-resource/.well-known/mercure
	sse_mercure @mercure {
		issuer https://localhost {
			publisher {
				jwt "` + mercureDevKey + `" HS256
			}
			subscriber {
				jwt "` + mercureDevKey + `" HS256
			}
		}
		issuer ` + mercureAppIssuer + ` {
			authorization_server
			publisher {
				jwt ` + mercureAppKey + `
			}
		}
		resource_identifier https://localhost/.well-known/mercure
		anonymous
		subscriptions
		heartbeat 200ms
	}
}

:{PORT2} {
	sse_mercure /.well-known/mercure {
		issuer ` + mercureAppIssuer + ` {
			publisher {
				jwt ` + mercureAppKey + `
			}
		}
		hub derived
	}
	sse_mercure /compat {
		issuer ` + mercureAppIssuer + ` {
			publisher {
				jwt ` + mercureAppKey + `
			}
		}
		protocol_version_compatibility 8
		hub compat
	}
}
`

// mercureCLIToken is a token shaped as Mercure's `mercure-token` command
// makes it: typ at+jwt; iss, aud, exp, sub, client_id, iat, jti; one
// authorization detail per action.
func mercureCLIToken(t *testing.T, key, iss, aud string, publish ...string) string {
	t.Helper()
	topics := make([]any, len(publish))
	for i, p := range publish {
		topics[i] = map[string]any{"match": p}
	}
	now := time.Now()
	return mercureToken(t, key, true, jwt.MapClaims{
		"iss": iss, "aud": aud, "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6", "client_id": iss,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
		"authorization_details": []any{map[string]any{"type": mercureDetailType, "actions": []string{"publish"}, "topics": topics}},
	})
}

// TestMercureConformanceTokenSignature: the conformance suite's token is
// signed with Mercure's development key (so the hub below verifies what
// Mercure's own hub verifies).
func TestMercureConformanceTokenSignature(t *testing.T) {
	tok, err := jwt.Parse(mercureConformanceToken, func(*jwt.Token) (any, error) { return []byte(mercureDevKey), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil || !tok.Valid {
		t.Fatalf("the conformance token does not verify with the development key: %v", err)
	}
	if tok.Header["typ"] != "at+jwt" {
		t.Fatalf("typ %v", tok.Header["typ"])
	}
}

func TestMercureAuth(t *testing.T) {
	c := startCaddy(t, mercureAuthSite)
	hub := c.base + "/.well-known/mercure"
	derived := fmt.Sprintf("http://127.0.0.1:%d/.well-known/mercure", c.port2)
	compat := fmt.Sprintf("http://127.0.0.1:%d/compat", c.port2)
	const metadata = "https://localhost/.well-known/oauth-protected-resource/.well-known/mercure"
	const topic = "https://example.com/books/1"

	t.Run("the conformance suite's token publishes and subscribes", func(t *testing.T) {
		s := subscribe(t, client, hub+"?match="+url.QueryEscape(topic), "Authorization: Bearer "+mercureConformanceToken).ready()
		id := mustMercurePublish(t, hub, mercureConformanceToken, update(topic, "conformance", "private", "on"))
		if ev := s.next(); ev.Data != "conformance" || ev.LastEventID != id {
			t.Fatalf("got %+v, want the private update %s", ev, id)
		}
	})

	t.Run("a mercure-token token publishes", func(t *testing.T) {
		tok := mercureCLIToken(t, mercureAppKey, mercureAppIssuer, "https://localhost/.well-known/mercure", "*")
		mustMercurePublish(t, hub, tok, update(topic, "from the app"))
		// The same claims signed with the other issuer's key: keys are
		// bound to their issuer.
		forged := mercureCLIToken(t, mercureDevKey, mercureAppIssuer, "https://localhost/.well-known/mercure", "*")
		status, _, challenge := mercurePublish(t, hub, forged, update(topic, "x"))
		if status != http.StatusUnauthorized || !challengeIsAt(challenge, `Bearer error="invalid_token"`, metadata) {
			t.Fatalf("another issuer's key: %d %q", status, challenge)
		}
		// Its audience is another hub's.
		other := mercureCLIToken(t, mercureAppKey, mercureAppIssuer, "https://other.example.com/.well-known/mercure", "*")
		if status, _, _ := mercurePublish(t, hub, other, update(topic, "x")); status != http.StatusUnauthorized {
			t.Fatalf("another hub's audience: %d", status)
		}
	})

	t.Run("the resource identifier is derived from the request unless pinned", func(t *testing.T) {
		mustMercurePublish(t, derived, mercureCLIToken(t, mercureAppKey, mercureAppIssuer, derived, "*"), update(topic, "derived"))
		status, _, challenge := mercurePublish(t, derived, mercureCLIToken(t, mercureAppKey, mercureAppIssuer, "https://localhost/.well-known/mercure", "*"), update(topic, "x"))
		wantMeta := fmt.Sprintf("http://127.0.0.1:%d/.well-known/oauth-protected-resource/.well-known/mercure", c.port2)
		if status != http.StatusUnauthorized || !challengeIsAt(challenge, `Bearer error="invalid_token"`, wantMeta) {
			t.Fatalf("aud of the pinned identity on a derived hub: %d %q", status, challenge)
		}
		c.waitLog("aud does not contain the resource identifier")
	})

	t.Run("a 0.x token: refused in modern mode, accepted in compatibility mode", func(t *testing.T) {
		old := mercureToken(t, mercureAppKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
		status, body, challenge := mercurePublish(t, derived, old, update(topic, "x"))
		if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
			t.Fatalf("modern mode: %d %q %s", status, challenge, body)
		}
		c.waitLog("protocol_version_compatibility 8")
		mustMercurePublish(t, compat, old, update(topic, "0.x"))
		// The 0.x query parameter: a token in compatibility mode only.
		status, _ = post(t, client, compat+"?authorization="+old, "application/x-www-form-urlencoded", stringsReader(update(topic, "q").Encode()))
		mustStatus(t, "0.x query token in compatibility mode", status, http.StatusOK, nil)
		status, _ = post(t, client, derived+"?authorization="+old, "application/x-www-form-urlencoded", stringsReader(update(topic, "q").Encode()))
		mustStatus(t, "0.x query token in modern mode", status, http.StatusUnauthorized, nil)
	})

	t.Run("RFC 6750 answers, each with resource_metadata", func(t *testing.T) {
		draft := mercureToken(t, mercureDevKey, true, jwt.MapClaims{"iss": "https://localhost", "aud": "https://localhost/.well-known/mercure",
			"authorization_details": []any{map[string]any{"type": "mercure", "actions": []string{"publish"},
				"topics": []any{map[string]any{"match": "*", "matchType": "Exact"}}}}})
		cases := []struct {
			name      string
			token     string
			headers   []string
			status    int
			challenge string
		}{
			{"no token", "", nil, 401, "Bearer"},
			{"a token in the query is not read", "", nil, 401, "Bearer"},
			{"Basic scheme", "", []string{"Authorization: Basic dTpw"}, 400, `Bearer error="invalid_request"`},
			{"Bearer without a token", "", []string{"Authorization: Bearer"}, 400, `Bearer error="invalid_request"`},
			{"invalid token", "not.a.token", nil, 401, `Bearer error="invalid_token"`},
			{"the draft's token shape", draft, nil, 403, `Bearer error="insufficient_scope"`},
			{"a cookie from another origin", "", []string{"Cookie: __Secure-mercure_access_token=" + mercureConformanceToken, "Origin: https://evil.example"}, 400, `Bearer error="invalid_request"`},
			{"the header wins over the cookie", "not.a.token", []string{"Cookie: __Secure-mercure_access_token=" + mercureConformanceToken}, 401, `Bearer error="invalid_token"`},
		}
		for _, tc := range cases {
			u := hub
			if strings.Contains(tc.name, "query") {
				u += "?authorization=" + mercureConformanceToken
			}
			status, body, challenge := mercurePublish(t, u, tc.token, update(topic, "x"), tc.headers...)
			if status != tc.status || !challengeIsAt(challenge, tc.challenge, metadata) {
				t.Errorf("%s: %d %q (%s), want %d %q", tc.name, status, challenge, strings.TrimSpace(body), tc.status, tc.challenge)
			}
		}
		// Two Authorization headers (mercurePublish sets one per header).
		req := newPost(t, hub, "application/x-www-form-urlencoded", update(topic, "x").Encode())
		req.Header.Add("Authorization", "Bearer "+mercureConformanceToken)
		req.Header.Add("Authorization", "Bearer "+mercureConformanceToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !challengeIsAt(resp.Header.Get("WWW-Authenticate"), `Bearer error="invalid_request"`, metadata) {
			t.Errorf("two Bearer headers: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		// The cookie from the hub's own origin publishes.
		status, body, _ := mercurePublish(t, hub, "", update(topic, "by cookie"), "Cookie: __Secure-mercure_access_token="+mercureConformanceToken, "Origin: "+c.base)
		mustStatus(t, "cookie publish from the hub's origin", status, http.StatusOK, []byte(body))
		// The 403 says why in the log: a newcomer's token of the draft's shape.
		c.waitLog("types seen: mercure")
	})

	t.Run("the cookie: the modern name only", func(t *testing.T) {
		s := subscribe(t, client, hub+"?match="+url.QueryEscape(topic), "Cookie: __Secure-mercure_access_token="+mercureConformanceToken).ready()
		mustMercurePublish(t, hub, mercureConformanceToken, update(topic, "private by cookie", "private", "on"))
		if ev := s.next(); ev.Data != "private by cookie" {
			t.Fatalf("cookie subscriber got %q", ev.Data)
		}
		// The 0.x cookie is not read in modern mode: no token, and the log
		// says which cookie to use.
		old := mercureToken(t, mercureAppKey, false, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"*"}}})
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, derived+"?match="+url.QueryEscape(topic), nil)
		req.Header.Set("Cookie", "mercureAuthorization="+old)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !challengeIs(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("0.x cookie in modern mode: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		c.waitLog("the mercureAuthorization cookie is ignored")
	})

	t.Run("the protected resource metadata", func(t *testing.T) {
		resp, err := client.Get(c.base + "/.well-known/oauth-protected-resource/.well-known/mercure")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"resource":                              "https://localhost/.well-known/mercure",
			"authorization_servers":                 []any{mercureAppIssuer},
			"authorization_details_types_supported": []any{mercureDetailType},
			"bearer_methods_supported":              []any{"header"},
			"mercure_cookie":                        "__Secure-mercure_access_token",
			"mercure_subscriptions":                 true,
		}
		if fmt.Sprint(doc) != fmt.Sprint(want) {
			t.Fatalf("metadata %s\nwant %v", body, want)
		}
	})

	// No refusal logged the token it refused.
	for _, tok := range []string{mercureConformanceToken, strings.Split(mercureConformanceToken, ".")[2]} {
		if strings.Contains(c.logs(), tok) {
			t.Fatal("a token is in Caddy's log")
		}
	}
}

// challengeIsAt is challengeIs with the metadata URL the challenge must
// point to.
func challengeIsAt(got, want, metadata string) bool {
	if !challengeIs(got, want) {
		return false
	}
	return strings.Contains(got, `resource_metadata="`+metadata+`"`)
}
