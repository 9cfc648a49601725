package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// corsSite serves two origins from one Caddy: a page at
// http://127.0.0.1:{PORT} (origin A) and the event streams at
// http://127.0.0.1:{PORT2} (origin B, another origin of the same site, so
// a cookie of B is sent on A's requests to B only when the EventSource
// asks for credentials).
const corsSite = `
http://127.0.0.1:{PORT} {
	respond /page "<!doctype html><title>origin A</title>" 200
}

http://127.0.0.1:{PORT2} {
	# The login sets a cookie for origin B.
	route /login {
		header Set-Cookie "sid=s3cret; Path=/; SameSite=Lax"
		respond "logged in" 200
	}
	# The stream is served only to a request that carries the cookie: an
	# event received proves the browser sent it.
	@withCookie {
		path /events
		header Cookie *sid=s3cret*
	}
	sse @withCookie {
		topic x
		origins http://127.0.0.1:{PORT} https://other.example
	}
	respond /events "no cookie" 401

	sse /strict {
		topic x
		origins https://app.example.com
	}
	sse /any {
		topic x
		origins *
	}
	sse /plain {
		topic x
	}
	sse_publish /_sse/publish
}
`

// corsRequest sends method to url with headers ("Key: value") and returns
// the response with its body read up to the first event-stream comment.
func corsRequest(t *testing.T, method, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 256)
	n, _ := io.ReadAtLeast(resp.Body, buf, 1) // a stream's opening comment, or an error text
	return resp, string(buf[:n])
}

func TestCORSOverHTTP(t *testing.T) {
	c := startCaddy(t, corsSite)
	a := fmt.Sprintf("http://127.0.0.1:%d", c.port)
	b := fmt.Sprintf("http://127.0.0.1:%d", c.port2)
	cookie := "Cookie: sid=s3cret"

	t.Run("preflight", func(t *testing.T) {
		resp, _ := corsRequest(t, http.MethodOptions, b+"/any?topic=x", "Origin: "+a,
			"Access-Control-Request-Method: GET", "Access-Control-Request-Headers: last-event-id, x-custom")
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "204")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", "*") // origins *: never credentials
		mustHeader(t, resp, "Access-Control-Allow-Credentials", "", "")
		mustHeader(t, resp, "Access-Control-Allow-Methods", "", "GET, HEAD")
		mustHeader(t, resp, "Access-Control-Allow-Headers", "", "last-event-id")
		mustHeader(t, resp, "Access-Control-Max-Age", "", "7200")
		mustVaryOrigin(t, resp)
	})
	t.Run("listed origin echoed with credentials", func(t *testing.T) {
		resp, body := corsRequest(t, http.MethodGet, b+"/events?topic=x", "Origin: "+a, cookie)
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
		mustHeader(t, resp, "Content-Type", "", "text/event-stream")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", a)
		mustHeader(t, resp, "Access-Control-Allow-Credentials", "", "true")
		mustVaryOrigin(t, resp)
		if !strings.HasPrefix(body, ": caddy-sse") {
			t.Fatalf("body %q, want the stream's opening", body)
		}
	})
	t.Run("star answers * without credentials", func(t *testing.T) {
		resp, _ := corsRequest(t, http.MethodGet, b+"/any?topic=x", "Origin: https://anyone.example:8443")
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", "*")
		mustHeader(t, resp, "Access-Control-Allow-Credentials", "", "")
	})
	t.Run("star admits null", func(t *testing.T) {
		resp, _ := corsRequest(t, http.MethodGet, b+"/any?topic=x", "Origin: null")
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", "*")
	})
	for _, origin := range []string{"https://evil.example", a, "null", "https://app.example.com/x"} {
		t.Run("forbidden origin "+origin, func(t *testing.T) {
			resp, body := corsRequest(t, http.MethodGet, b+"/strict?topic=x", "Origin: "+origin)
			mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "403")
			mustHeader(t, resp, "Content-Type", "", "text/plain; charset=utf-8")
			mustHeader(t, resp, "Access-Control-Allow-Origin", "", "")
			mustVaryOrigin(t, resp)
			if !strings.Contains(body, "origin") {
				t.Fatalf("403 body %q does not say why", body)
			}
		})
	}
	t.Run("forbidden preflight", func(t *testing.T) {
		resp, _ := corsRequest(t, http.MethodOptions, b+"/strict?topic=x", "Origin: https://evil.example",
			"Access-Control-Request-Method: GET")
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "403")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", "")
	})
	t.Run("no Origin is served as before", func(t *testing.T) {
		resp, body := corsRequest(t, http.MethodGet, b+"/strict?topic=x")
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", "")
		mustVaryOrigin(t, resp)
		if !strings.HasPrefix(body, ": caddy-sse") {
			t.Fatalf("body %q, want the stream's opening", body)
		}
	})
	t.Run("without origins no CORS headers", func(t *testing.T) {
		resp, _ := corsRequest(t, http.MethodGet, b+"/plain?topic=x", "Origin: "+a)
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "200")
		for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Vary"} {
			mustHeader(t, resp, h, "", "")
		}
		// A preflight there is what it was before: a 405.
		resp, _ = corsRequest(t, http.MethodOptions, b+"/plain?topic=x", "Origin: "+a, "Access-Control-Request-Method: GET")
		mustHeader(t, resp, "status", fmt.Sprint(resp.StatusCode), "405")
		mustHeader(t, resp, "Allow", "", "GET, HEAD")
		mustHeader(t, resp, "Access-Control-Allow-Origin", "", "")
	})
}

func mustHeader(t *testing.T, resp *http.Response, name, got, want string) {
	t.Helper()
	if name != "status" {
		got = resp.Header.Get(name)
	}
	if got != want {
		t.Fatalf("%s: %q, want %q; headers: %v", name, got, want, resp.Header)
	}
}

func mustVaryOrigin(t *testing.T, resp *http.Response) {
	t.Helper()
	if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Fatalf("no Vary: Origin; headers: %v", resp.Header)
	}
}

// TestCORSInBrowser: a page of origin A subscribes, with credentials, to a
// stream of origin B; the browser sends B's cookie and shows the page the
// events. A route whose origins do not list A is refused: the page's
// EventSource fails and stays closed. On a route with origins *, an
// EventSource with credentials fails (no site may read a visitor's stream
// with their cookie) and one without works.
func TestCORSInBrowser(t *testing.T) {
	c := startCaddy(t, corsSite)
	a := fmt.Sprintf("http://127.0.0.1:%d", c.port)
	b := fmt.Sprintf("http://127.0.0.1:%d", c.port2)
	browser := newBrowser(t)
	// The cookie is set in a tab of its own: the browser's profile, not
	// the tab, keeps it.
	newTab(t, browser).do("log in on origin B", chromedp.Navigate(b+"/login"))
	p := newTab(t, browser)
	p.do("load the page of origin A", chromedp.Navigate(a+"/page"))

	eval[bool](p, fmt.Sprintf(`(() => {
		window.got = [];
		window.errs = [];
		window.es = new EventSource(%q, {withCredentials: true});
		es.onmessage = (e) => window.got.push(e.data);
		es.onerror = () => window.errs.push(es.readyState);
		window.strict = new EventSource(%q, {withCredentials: true});
		strict.onerror = () => window.errs.push('strict:' + strict.readyState);
		window.anyGot = [];
		window.anyErrs = [];
		window.anyCred = new EventSource(%q, {withCredentials: true});
		anyCred.onmessage = (e) => window.anyGot.push('cred:' + e.data);
		anyCred.onerror = () => window.anyErrs.push('cred:' + anyCred.readyState);
		window.anyPlain = new EventSource(%q);
		anyPlain.onmessage = (e) => window.anyGot.push('plain:' + e.data);
		anyPlain.onerror = () => window.anyErrs.push('plain:' + anyPlain.readyState);
		return true;
	})()`, b+"/events?topic=x", b+"/strict?topic=x", b+"/any?topic=x", b+"/any?topic=x"))
	p.waitJS("the cross-origin stream opens", `window.es.readyState === EventSource.OPEN`)
	p.waitJS("the origins * stream without credentials opens", `window.anyPlain.readyState === EventSource.OPEN`)
	p.waitJS("the origins * stream with credentials fails and stays closed",
		`window.anyErrs.includes('cred:' + EventSource.CLOSED) && window.anyCred.readyState === EventSource.CLOSED`)
	if origin := eval[string](p, `location.origin`); origin != a {
		t.Fatalf("the page's origin is %q, want %q", origin, a)
	}
	r := publishData(t, b+"/_sse/publish", "x", "across origins")
	if r.Delivered < 1 {
		t.Fatalf("publish delivered to %d subscribers, want the page's stream", r.Delivered)
	}
	p.waitJS("the page receives the event", `window.got.includes('across origins')`)
	p.waitJS("the origins * stream without credentials receives it", `window.anyGot.includes('plain:across origins')`)
	if got := eval[[]any](p, `window.anyGot`); len(got) != 1 {
		t.Fatalf("origins * streams received %v, want only the one without credentials", got)
	}
	if errs := eval[[]any](p, `window.anyErrs`); len(errs) != 1 {
		t.Fatalf("errors of the origins * streams: %v, want only the credentialed one's", errs)
	}

	p.waitJS("the stream of a route that does not list origin A fails and stays closed",
		`window.errs.includes('strict:' + EventSource.CLOSED) && window.strict.readyState === EventSource.CLOSED`)
	if errs := eval[[]any](p, `window.errs`); len(errs) != 1 {
		t.Fatalf("errors on the page: %v, want only the refused stream's", errs)
	}
}
