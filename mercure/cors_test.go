package mercure

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ssehub/caddy-sse/internal/stream"
)

// An sse_mercure route's preflight also admits POST (publishing with
// fetch) and Authorization (a Bearer token from fetch or an EventSource
// polyfill); the sse route's stays an EventSource's.
func TestMercureCORSPreflight(t *testing.T) {
	app := "https://app.example.com"
	m := &Handler{Origins: []string{app}}
	c, err := m.corsPolicy()
	if err != nil {
		t.Fatal(err)
	}
	sse, _ := stream.NewCORSPolicy([]string{app})
	preflight := func(c *stream.CORSPolicy, method, headers string) *http.Response {
		r := httptest.NewRequest(http.MethodOptions, "https://hub.example.com/.well-known/mercure", nil)
		r.Header.Set("Origin", app)
		r.Header.Set("Access-Control-Request-Method", method)
		r.Header.Set("Access-Control-Request-Headers", headers)
		w := httptest.NewRecorder()
		if answered, err := c.Handle(w, r); !answered || err != nil {
			t.Fatalf("preflight not answered: %v", err)
		}
		return w.Result()
	}
	res := preflight(c, "POST", "authorization, last-event-id, x-evil")
	if got := res.Header.Get("Access-Control-Allow-Methods"); got != "GET, HEAD, POST, QUERY" {
		t.Errorf("sse_mercure Allow-Methods %q", got)
	}
	if got := res.Header.Get("Access-Control-Allow-Headers"); got != "authorization, last-event-id" {
		t.Errorf("sse_mercure Allow-Headers %q", got)
	}
	res = preflight(sse, "GET", "authorization, last-event-id")
	if got := res.Header.Get("Access-Control-Allow-Methods"); got != "GET, HEAD" {
		t.Errorf("sse Allow-Methods %q: widening the Mercure policy leaked into sse", got)
	}
	if got := res.Header.Get("Access-Control-Allow-Headers"); got != "last-event-id" {
		t.Errorf("sse Allow-Headers %q: widening the Mercure policy leaked into sse", got)
	}
}

// publish_origins must be a subset of what origins allows when origins is
// set: CORS would refuse the others before their cookie is checked.
func TestMercureCORSPublishOrigins(t *testing.T) {
	for _, tc := range []struct {
		origins, publish []string
		bad              string
	}{
		{origins: nil, publish: []string{"https://admin.example.com"}},
		{origins: []string{"*"}, publish: []string{"https://admin.example.com"}},
		{origins: []string{"https://ADMIN.example.com:443"}, publish: []string{"https://admin.example.com"}},
		{origins: []string{"https://app.example.com"}, publish: []string{"https://admin.example.com"}, bad: "https://admin.example.com is not in origins"},
		{origins: []string{"https://app.example.com"}, publish: []string{"http://app.example.com"}, bad: "http://app.example.com is not in origins"},
	} {
		m := &Handler{Origins: tc.origins}
		m.PublishOrigins = tc.publish
		c, err := m.corsPolicy()
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("origins %q, publish_origins %q: %v", tc.origins, tc.publish, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("origins %q, publish_origins %q: %v, want an error with %q", tc.origins, tc.publish, err, tc.bad)
		case tc.origins == nil && c != nil:
			t.Errorf("no origins gave a policy")
		}
	}
}

// sse_mercure answers an unlisted origin without CORS headers (the Mercure
// spec sends them to an allowlist; it does not refuse), exposes Link and
// Mercure-Last-Event-ID to the listed ones, and "*" never allows
// credentials.
func TestMercureCORSOrigins(t *testing.T) {
	listed, err := (&Handler{Origins: []string{"https://app.example.com"}}).corsPolicy()
	if err != nil {
		t.Fatal(err)
	}
	star, err := (&Handler{Origins: []string{"*"}}).corsPolicy()
	if err != nil {
		t.Fatal(err)
	}
	do := func(c *stream.CORSPolicy, method, origin string, preflight bool) (bool, *http.Response) {
		r := httptest.NewRequest(method, "https://hub.example.com/.well-known/mercure", nil)
		r.Header.Set("Origin", origin)
		if preflight {
			r.Header.Set("Access-Control-Request-Method", "POST")
		}
		w := httptest.NewRecorder()
		answered, err := c.Handle(w, r)
		if err != nil {
			t.Fatal(err)
		}
		return answered, w.Result()
	}
	for _, tc := range []struct {
		name              string
		c                 *stream.CORSPolicy
		method, origin    string
		preflight         bool
		answered          bool
		status            int
		allow, cred, expo string
	}{
		{"listed", listed, "GET", "https://app.example.com", false, false, 200, "https://app.example.com", "true", mercureExposedHeaders},
		{"unlisted served bare", listed, "GET", "https://evil.example", false, false, 200, "", "", ""},
		{"null unlisted served bare", listed, "GET", "null", false, false, 200, "", "", ""},
		{"unlisted preflight bare", listed, "OPTIONS", "https://evil.example", true, true, 204, "", "", ""},
		{"star", star, "GET", "https://evil.example", false, false, 200, "*", "", mercureExposedHeaders},
		{"star null", star, "POST", "null", false, false, 200, "*", "", mercureExposedHeaders},
		{"star preflight", star, "OPTIONS", "null", true, true, 204, "*", "", ""},
	} {
		answered, res := do(tc.c, tc.method, tc.origin, tc.preflight)
		if answered != tc.answered || res.StatusCode != tc.status {
			t.Errorf("%s: answered %v with %d, want %v with %d", tc.name, answered, res.StatusCode, tc.answered, tc.status)
		}
		for h, want := range map[string]string{"Access-Control-Allow-Origin": tc.allow,
			"Access-Control-Allow-Credentials": tc.cred, "Access-Control-Expose-Headers": tc.expo} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("%s: %s %q, want %q", tc.name, h, got, want)
			}
		}
	}
}
