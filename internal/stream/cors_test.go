package stream

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNormalizeOrigin(t *testing.T) {
	good := map[string]string{
		"https://app.example.com":      "https://app.example.com",
		"HTTPS://App.Example.COM":      "https://app.example.com",
		"https://app.example.com:443":  "https://app.example.com",
		"http://localhost:80":          "http://localhost",
		"http://localhost:3000":        "http://localhost:3000",
		"https://app.example.com:8443": "https://app.example.com:8443",
		"http://[::1]:8080":            "http://[::1]:8080",
		"http://[::1]":                 "http://[::1]",
		"http://127.0.0.1:08080":       "http://127.0.0.1:8080",
		"null":                         "null",
	}
	for in, want := range good {
		got, err := NormalizeOrigin(in)
		if err != nil || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "*", "app.example.com", "https://", "https://app.example.com/",
		"https://app.example.com/path", "https://app.example.com?x", "https://app.example.com#f",
		"https://user@app.example.com", "https://*.example.com", "https://app.example.com:0",
		"https://app.example.com:70000", "https://app.example.com:http", "mailto:x@example.com",
		"NULL", "https://a%2eexample.com",
	}
	for _, in := range bad {
		if got, err := NormalizeOrigin(in); err == nil {
			t.Errorf("NormalizeOrigin(%q) = %q, want an error", in, got)
		}
	}
}

// corsCase is one request through a policy and what must come back.
type corsCase struct {
	name    string
	method  string
	headers map[string]string
	tls     bool

	answered bool   // handle answered the request itself
	status   int    // when answered
	allow    string // Access-Control-Allow-Origin ("" = absent)
	allowHdr string // Access-Control-Allow-Headers on a preflight
}

func runCORS(t *testing.T, origins []string, cases []corsCase) {
	t.Helper()
	c, err := NewCORSPolicy(origins)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://api.example.com/events", nil)
			if tc.tls {
				r = httptest.NewRequest(tc.method, "https://api.example.com/events", nil)
			}
			for k, v := range tc.headers {
				for vv := range strings.SplitSeq(v, "|") {
					r.Header.Add(k, vv)
				}
			}
			w := httptest.NewRecorder()
			answered, err := c.Handle(w, r)
			if err != nil {
				t.Fatal(err)
			}
			res := w.Result()
			if answered != tc.answered || (answered && res.StatusCode != tc.status) {
				t.Fatalf("answered %v with %d, want answered %v with %d", answered, res.StatusCode, tc.answered, tc.status)
			}
			if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("no Vary: Origin; headers %v", res.Header)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != tc.allow {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allow)
			}
			wantCred := ""
			if tc.allow != "" && tc.allow != "*" { // "*" never with credentials
				wantCred = "true"
			}
			if got := res.Header.Get("Access-Control-Allow-Credentials"); got != wantCred {
				t.Errorf("Access-Control-Allow-Credentials %q, want %q", got, wantCred)
			}
			if got := res.Header.Get("Access-Control-Allow-Headers"); got != tc.allowHdr {
				t.Errorf("Access-Control-Allow-Headers %q, want %q", got, tc.allowHdr)
			}
			if tc.status == http.StatusForbidden {
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("403 Content-Type %q, want text/plain (not an event stream)", ct)
				}
			}
			if tc.status == http.StatusNoContent {
				if m := res.Header.Get("Access-Control-Allow-Methods"); m != "GET, HEAD" {
					t.Errorf("Access-Control-Allow-Methods %q", m)
				}
				if res.Header.Get("Access-Control-Max-Age") == "" {
					t.Error("no Access-Control-Max-Age on a preflight")
				}
			}
		})
	}
}

func TestCORSListedOrigins(t *testing.T) {
	app := "https://app.example.com"
	runCORS(t, []string{"HTTPS://APP.example.com:443", "null"}, []corsCase{
		{name: "no Origin is served as before", method: "GET"},
		{name: "listed origin echoed", method: "GET", headers: map[string]string{"Origin": app}, allow: app},
		{name: "listed origin, HEAD", method: "HEAD", headers: map[string]string{"Origin": app}, allow: app},
		{name: "other origin refused", method: "GET", headers: map[string]string{"Origin": "https://evil.example"},
			answered: true, status: 403},
		{name: "listed host, other scheme refused", method: "GET", headers: map[string]string{"Origin": "http://app.example.com"},
			answered: true, status: 403},
		{name: "listed host, other port refused", method: "GET", headers: map[string]string{"Origin": "https://app.example.com:8443"},
			answered: true, status: 403},
		{name: "malformed Origin refused", method: "GET", headers: map[string]string{"Origin": "https://app.example.com/x"},
			answered: true, status: 403},
		{name: "two Origin headers refused", method: "GET", headers: map[string]string{"Origin": app + "|" + app},
			answered: true, status: 403},
		{name: "null listed explicitly", method: "GET", headers: map[string]string{"Origin": "null"}, allow: "null"},
		{name: "own origin is same-origin", method: "GET", headers: map[string]string{"Origin": "http://api.example.com"},
			allow: "http://api.example.com"},
		{name: "own host over the other scheme is another origin", method: "GET", tls: true,
			headers: map[string]string{"Origin": "http://api.example.com"}, answered: true, status: 403},
		{name: "preflight answered", method: "OPTIONS", headers: map[string]string{
			"Origin": app, "Access-Control-Request-Method": "GET",
			"Access-Control-Request-Headers": "last-event-id, x-evil,Cache-Control"},
			answered: true, status: 204, allow: app, allowHdr: "last-event-id, cache-control"},
		{name: "preflight asking for no EventSource header", method: "OPTIONS", headers: map[string]string{
			"Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-evil"},
			answered: true, status: 204, allow: app},
		{name: "preflight from another origin refused", method: "OPTIONS", headers: map[string]string{
			"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
			answered: true, status: 403},
		{name: "OPTIONS that is no preflight goes on (405 later)", method: "OPTIONS", headers: map[string]string{"Origin": app},
			allow: app},
		{name: "preflight without Origin goes on (405 later)", method: "OPTIONS",
			headers: map[string]string{"Access-Control-Request-Method": "GET"}},
	})
}

func TestCORSAnyOrigin(t *testing.T) {
	runCORS(t, []string{"*"}, []corsCase{
		// "*", never the origin reflected with credentials: any site
		// could read a visitor's private stream with their cookie.
		{name: "any origin gets *, no credentials", method: "GET", headers: map[string]string{"Origin": "https://x.example:8443"},
			allow: "*"},
		{name: "null is served too", method: "GET", headers: map[string]string{"Origin": "null"},
			allow: "*"},
		{name: "preflight of any origin", method: "OPTIONS", headers: map[string]string{"Origin": "https://x.example",
			"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "Last-Event-ID"},
			answered: true, status: 204, allow: "*", allowHdr: "last-event-id"},
		{name: "garbage is not an origin", method: "GET", headers: map[string]string{"Origin": "<script>"},
			answered: true, status: 403},
	})
}

func TestCORSPolicyErrors(t *testing.T) {
	if c, err := NewCORSPolicy(nil); c != nil || err != nil {
		t.Fatalf("no origins: %v, %v; want no policy", c, err)
	}
	for _, origins := range [][]string{{"*", "https://a.example"}, {"https://a.example/"}, {"a.example"}} {
		if _, err := NewCORSPolicy(origins); err == nil || !strings.Contains(err.Error(), "origins") {
			t.Errorf("NewCORSPolicy(%q) = %v, want an error naming origins", origins, err)
		}
	}
}
