package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// safetyCORSSite: `origins *` on an sse route and on an sse_mercure route,
// and an sse_mercure route that lists one origin.
const safetyCORSSite = `:{PORT} {
	sse /any {
		topic x
		origins *
	}
	sse_publish /publish
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		protocol_version_compatibility 8
		origins *
	}
	sse_mercure /listed {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		protocol_version_compatibility 8
		origins https://app.example.com
		hub listed
	}
}
`

// TestSafetyCORSStarWithoutCredentials: `origins *` answers
// Access-Control-Allow-Origin: * and never allows credentials, on sse and
// sse_mercure (issue 16: any site read a visitor's private streams with
// their cookie), and then serves Origin: null too.
func TestSafetyCORSStarWithoutCredentials(t *testing.T) {
	c := startCaddy(t, safetyCORSSite)
	for _, path := range []string{"/any?topic=x", "/.well-known/mercure?topic=x"} {
		for _, origin := range []string{"https://anyone.example:8443", "null"} {
			t.Run(path+" from "+origin, func(t *testing.T) {
				resp, body := corsRequest(t, http.MethodGet, c.base+path, "Origin: "+origin, "Cookie: sid=s3cret")
				mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
				mustHeader(t, resp, "Access-Control-Allow-Origin", "", "*")
				mustHeader(t, resp, "Access-Control-Allow-Credentials", "", "")
				if !strings.HasPrefix(body, ": caddy-sse") {
					t.Fatalf("body %q, want the stream's opening", body)
				}
			})
			t.Run(path+" preflight from "+origin, func(t *testing.T) {
				resp, _ := corsRequest(t, http.MethodOptions, c.base+path, "Origin: "+origin,
					"Access-Control-Request-Method: GET", "Access-Control-Request-Headers: last-event-id")
				mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "204")
				mustHeader(t, resp, "Access-Control-Allow-Origin", "", "*")
				mustHeader(t, resp, "Access-Control-Allow-Credentials", "", "")
				mustHeader(t, resp, "Access-Control-Allow-Headers", "", "last-event-id")
			})
		}
	}
}

// TestSafetyCORSMercure: a listed origin is echoed with credentials and
// may read Link (the subscriptions API's cursor) and Mercure-Last-Event-ID;
// a preflight admits QUERY (subscribing with a form body); an unlisted
// origin gets no CORS header (the spec restricts the headers to an
// allowlist; the browser then hides the answer), as Mercure answers.
func TestSafetyCORSMercure(t *testing.T) {
	c := startCaddy(t, safetyCORSSite)
	hub := c.base + "/listed"
	const app = "https://app.example.com"

	t.Run("listed origin", func(t *testing.T) {
		resp, body := corsRequest(t, http.MethodGet, hub+"?topic=x", "Origin: "+app)
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", app)
		mustHeader(t, resp, "Access-Control-Allow-Credentials", "", "true")
		exposed := strings.ToLower(strings.Join(resp.Header.Values("Access-Control-Expose-Headers"), ","))
		for _, h := range []string{"link", "mercure-last-event-id"} {
			if !strings.Contains(exposed, h) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
			}
		}
		mustVaryOrigin(t, resp)
		if !strings.HasPrefix(body, ": caddy-sse") {
			t.Fatalf("body %q, want the stream's opening", body)
		}
	})
	t.Run("preflight admits QUERY", func(t *testing.T) {
		resp, _ := corsRequest(t, http.MethodOptions, hub, "Origin: "+app,
			"Access-Control-Request-Method: QUERY", "Access-Control-Request-Headers: authorization")
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "204")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", app)
		methods := resp.Header.Get("Access-Control-Allow-Methods")
		for _, m := range []string{"GET", "POST", "QUERY"} {
			if !strings.Contains(methods, m) {
				t.Errorf("Access-Control-Allow-Methods %q lacks %s", methods, m)
			}
		}
		mustHeader(t, resp, "Access-Control-Allow-Headers", "", "authorization")
	})
	t.Run("unlisted origin gets no CORS header", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example", "null"} {
			resp, _ := corsRequest(t, http.MethodGet, hub+"?topic=x", "Origin: "+origin)
			mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
			for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"} {
				mustHeader(t, resp, h, "", "")
			}
			mustVaryOrigin(t, resp)
			resp, _ = corsRequest(t, http.MethodOptions, hub, "Origin: "+origin, "Access-Control-Request-Method: POST")
			for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Credentials"} {
				mustHeader(t, resp, h, "", "")
			}
		}
	})
}
