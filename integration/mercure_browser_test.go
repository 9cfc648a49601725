package integration

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
)

// Mercure from a browser: the page gets its token as an HttpOnly cookie
// from a login route, as apps do, and its EventSource sends it to the hub.

const (
	mercureBook1    = "https://example.com/books/1"
	mercureBook2    = "https://example.com/books/2"
	mercureBookTmpl = "https://example.com/books/{id}"
)

// mercureLoginRoute is an app's login: it sets the token as a cookie for
// the hub's path only, out of the page's scripts' reach.
func mercureLoginRoute(path, name, token, sameSite string) string {
	secure := ""
	if strings.HasPrefix(name, "__Secure-") {
		// The prefix makes browsers refuse the cookie without Secure;
		// http://127.0.0.1 is a secure context for them.
		secure = " Secure;"
	}
	return fmt.Sprintf(`
	route %s {
		header Set-Cookie "%s=%s; Path=/.well-known/mercure;%s HttpOnly; SameSite=%s"
		respond "logged in" 200
	}`, path, name, token, secure, sameSite)
}

// mercureBookTokens are subscriber tokens that may read book 1's private
// updates (not book 2's): 0.x and 1.0 (at+jwt).
func mercureBookTokens(t *testing.T, key string) (v0, v1 string) {
	v0 = mercureToken(t, key, false, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{mercureBook1}}})
	v1 = mercureToken(t, key, true, jwt.MapClaims{"authorization_details": []any{map[string]any{
		"type": mercureDetailType, "actions": []string{"subscribe"},
		"topics": []any{map[string]any{"match": mercureBook1}},
	}}})
	return v0, v1
}

// mercurePage is a tab whose EventSources are opened by name; it records
// each one's messages and errors, and the status of every event-stream
// response the browser got.
type mercurePage struct {
	*tab
	mu       sync.Mutex
	statuses map[string][]int64  // event-stream URL -> statuses, in order
	corsErrs map[string][]string // event-stream URL -> why the browser hid the answer
	urls     map[network.RequestID]string
}

func newMercurePage(t *testing.T, browser context.Context, pageURL string) *mercurePage {
	t.Helper()
	p := &mercurePage{tab: newTab(t, browser), statuses: map[string][]int64{},
		corsErrs: map[string][]string{}, urls: map[network.RequestID]string{}}
	if err := chromedp.Listen(p.ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			p.urls[e.RequestID] = e.Request.URL
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeEventSource {
				p.statuses[e.Response.URL] = append(p.statuses[e.Response.URL], e.Response.Status)
			}
		case *network.EventLoadingFailed:
			if e.CorsErrorStatus != nil {
				u := p.urls[e.RequestID]
				p.corsErrs[u] = append(p.corsErrs[u], string(e.CorsErrorStatus.CorsError))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	p.do("load the page", chromedp.Navigate(pageURL))
	eval[bool](p.tab, `(() => {
		window.mt = { got: {}, errs: {}, es: {} };
		window.openES = (name, url, withCredentials) => {
			const es = new EventSource(url, { withCredentials });
			mt.es[name] = es; mt.got[name] = []; mt.errs[name] = [];
			es.onmessage = (e) => mt.got[name].push(e.data);
			es.onerror = () => mt.errs[name].push(es.readyState);
			return true;
		};
		return true;
	})()`)
	return p
}

// fetch runs fetch(url, init) in the page and returns "status body", or
// "error: ..." when the browser refused to show the answer.
func (p *mercurePage) fetch(url, init string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch(%q, %s).then(
		async (r) => r.status + ' ' + await r.text(),
		(e) => 'error: ' + e)`, url, init), chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("fetch %s: %v", url, err)
	}
	return v
}

func (p *mercurePage) open(name, url string, withCredentials bool) {
	p.t.Helper()
	eval[bool](p.tab, fmt.Sprintf(`openES(%q, %q, %v)`, name, url, withCredentials))
}

func (p *mercurePage) waitOpen(name string) {
	p.t.Helper()
	p.waitJS(name+" opens", fmt.Sprintf(`mt.es[%q].readyState === EventSource.OPEN`, name))
}

// waitRefused waits until the EventSource has failed for good (CLOSED:
// the browser does not retry a non-stream answer) and checks the status
// the browser got; status 0: the browser hid the answer (CORS), corsErr
// says why.
func (p *mercurePage) waitRefused(name, url string, status int64, corsErr string) {
	p.t.Helper()
	p.waitJS(name+" fails and stays closed", fmt.Sprintf(
		`mt.errs[%q].includes(EventSource.CLOSED) && mt.es[%[1]q].readyState === EventSource.CLOSED`, name))
	p.mu.Lock()
	got, cors := p.statuses[url], p.corsErrs[url]
	p.mu.Unlock()
	switch {
	case status == 0 && (len(got) != 0 || len(cors) != 1 || cors[0] != corsErr):
		p.t.Fatalf("%s: the browser got the statuses %v and CORS errors %q, want none and one %s", name, got, cors, corsErr)
	case status != 0 && (len(got) != 1 || got[0] != status):
		p.t.Fatalf("%s: the browser got the statuses %v, want one %d", name, got, status)
	}
	if n := eval[int](p.tab, fmt.Sprintf(`mt.got[%q].length`, name)); n != 0 {
		p.t.Fatalf("%s: a refused stream delivered %d messages", name, n)
	}
}

// waitGot waits until the EventSource has received len(want) messages and
// checks they are exactly want.
func (p *mercurePage) waitGot(name string, want ...string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("%s receives %d messages", name, len(want)), fmt.Sprintf(`mt.got[%q].length >= %d`, name, len(want)))
	if got := eval[[]string](p.tab, fmt.Sprintf(`mt.got[%q]`, name)); !reflect.DeepEqual(got, want) {
		p.t.Fatalf("%s received %q, want exactly %q", name, got, want)
	}
}

// mercurePrivateDrill publishes book 1's private update (the page's token
// allows it), then book 2's (it does not) and a public marker: the page
// must receive book 1's and then the marker, nothing between.
func mercurePrivateDrill(t *testing.T, p *mercurePage, name, hub, pubToken, tag string) {
	t.Helper()
	mustMercurePublish(t, hub, pubToken, update(mercureBook1, tag+" private 1", "private", "on"))
	p.waitGot(name, tag+" private 1")
	mustMercurePublish(t, hub, pubToken, update(mercureBook2, tag+" private 2", "private", "on"))
	mustMercurePublish(t, hub, pubToken, update(mercureBook2, tag+" public marker"))
	p.waitGot(name, tag+" private 1", tag+" public marker")
}

// TestMercureBrowserCookie: a page on the hub's origin logs in (a route
// sets the token as an HttpOnly, SameSite=Strict cookie for the hub's
// path) and subscribes with a plain EventSource: with a 0.x cookie and
// token, then, after logging out, the 1.0 cookie
// (__Secure-mercure_access_token) and an at+jwt token; the hub is in
// compatibility mode, which reads both. Without a cookie (and without
// anonymous) the hub answers 401 and the EventSource stops.
func TestMercureBrowserCookie(t *testing.T) {
	sub0, sub1 := mercureBookTokens(t, mercureSubKey)
	site := `http://127.0.0.1:{PORT} {` +
		mercureLoginRoute("/login0", "mercureAuthorization", sub0, "Strict") +
		mercureLoginRoute("/login1", "__Secure-mercure_access_token", sub1, "Strict") + `
	route /logout {
		header +Set-Cookie "mercureAuthorization=; Path=/.well-known/mercure; Max-Age=0"
		header +Set-Cookie "__Secure-mercure_access_token=; Path=/.well-known/mercure; Secure; Max-Age=0"
		respond "logged out" 200
	}
	respond /page "<!doctype html><title>app</title>" 200
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
	}
}
`
	c := startCaddy(t, site)
	hub := c.base + "/.well-known/mercure"
	pub := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	stream := "/.well-known/mercure?topic=" + url.QueryEscape(mercureBookTmpl)

	p := newMercurePage(t, newBrowser(t), c.base+"/page")

	// No cookie yet: 401, and the browser gives up.
	p.open("anonymous", stream, false)
	p.waitRefused("anonymous", c.base+stream, 401, "")

	if got := p.fetch("/login0", "{}"); got != "200 logged in" {
		t.Fatalf("login: %s", got)
	}
	if cookies := eval[string](p.tab, `document.cookie`); cookies != "" {
		t.Fatalf("the page's scripts can read %q: the cookie is not HttpOnly", cookies)
	}
	p.open("v0", stream, false)
	p.waitOpen("v0")
	mercurePrivateDrill(t, p, "v0", hub, pub, "0.x")

	eval[bool](p.tab, `mt.es.v0.close(), true`)
	if got := p.fetch("/logout", "{}"); got != "200 logged out" {
		t.Fatalf("logout: %s", got)
	}
	if got := p.fetch("/login1", "{}"); got != "200 logged in" {
		t.Fatalf("login: %s", got)
	}
	// Another URL than the first stream's, so that its status is its own.
	stream1 := stream + "&topic=" + url.QueryEscape("https://example.com/other")
	p.open("v1", stream1, false)
	p.waitOpen("v1")
	mercurePrivateDrill(t, p, "v1", hub, pub, "1.0")
}

// TestMercureBrowserCrossOrigin: the app's page is on origin A
// (http://localhost:{PORT}), the hub on origin B (http://localhost:{PORT2}):
// cross-origin, same site, as app.example.com and hub.example.com are.
// The app's login sets the cookie for the host (cookies ignore ports, as
// they ignore subdomains when a Domain is given), SameSite=Strict, so the
// browser sends it to B, but only on a request that asks for credentials:
// an EventSource with withCredentials gets the private update; one without
// is refused (401); a route whose origins do not list A is refused (403).
// A page of A publishes with the cookie too: accepted where A is in
// publish_origins, refused (400 invalid_request, readable: origins lists
// A) where not.
func TestMercureBrowserCrossOrigin(t *testing.T) {
	// One key for both roles, so the page's cookie can publish too.
	sub0, _ := mercureBookTokens(t, mercureSubKey)
	both := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{
		"subscribe": []string{mercureBook1}, "publish": []string{mercureBook1}}})
	site := `http://:{PORT} {` +
		mercureLoginRoute("/login", "mercureAuthorization", sub0, "Strict") +
		mercureLoginRoute("/login-publisher", "mercureAuthorization", both, "Strict") + `
	respond /page "<!doctype html><title>app on origin A</title>" 200
}

http://:{PORT2} {
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercureSubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
		origins http://localhost:{PORT}
		publish_origins http://localhost:{PORT}
	}
	sse_mercure /.well-known/mercure/no-publish {
		publisher_jwt ` + mercureSubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
		origins http://localhost:{PORT}
	}
	sse_mercure /.well-known/mercure/elsewhere {
		publisher_jwt ` + mercureSubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
		origins https://app.example.com
	}
}
`
	c := startCaddy(t, site)
	a := fmt.Sprintf("http://localhost:%d", c.port)
	b := fmt.Sprintf("http://localhost:%d", c.port2)
	hub := fmt.Sprintf("http://127.0.0.1:%d/.well-known/mercure", c.port2)
	pub := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	query := "?topic=" + url.QueryEscape(mercureBookTmpl)

	p := newMercurePage(t, newBrowser(t), a+"/page")
	if got := p.fetch("/login", "{}"); got != "200 logged in" {
		t.Fatalf("login on A: %s", got)
	}
	p.open("credentials", b+"/.well-known/mercure"+query, true)
	p.open("none", b+"/.well-known/mercure"+query+"&without=credentials", false)
	p.open("elsewhere", b+"/.well-known/mercure/elsewhere"+query, true)
	p.waitOpen("credentials")
	p.waitRefused("none", b+"/.well-known/mercure"+query+"&without=credentials", 401, "")
	// The hub answers 403 without CORS headers: the browser hides it.
	p.waitRefused("elsewhere", b+"/.well-known/mercure/elsewhere"+query, 0, "MissingAllowOriginHeader")
	mercurePrivateDrill(t, p, "credentials", hub, pub, "cross-origin")

	// Publishing from A with the cookie: publish_origins decides.
	if got := p.fetch("/login-publisher", "{}"); got != "200 logged in" {
		t.Fatalf("login on A: %s", got)
	}
	form := url.Values{"topic": {mercureBook1}, "data": {"published by the page"}, "private": {"on"}}.Encode()
	init := fmt.Sprintf(`{method: 'POST', credentials: 'include', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: %q}`, form)
	got := p.fetch(b+"/.well-known/mercure", init)
	if len(got) < 5 || got[:4] != "200 " || got[4:] == "" {
		t.Fatalf("publishing from A with the cookie: %q, want 200 and the update's id", got)
	}
	p.waitGot("credentials", "cross-origin private 1", "cross-origin public marker", "published by the page")
	if got := p.fetch(b+"/.well-known/mercure/no-publish", init); len(got) < 4 || got[:4] != "400 " {
		t.Fatalf("publishing from A with the cookie where publish_origins does not list A: %q, want a readable 400", got)
	}
	// Without credentials the cookie stays home: no token, 401.
	noCreds := fmt.Sprintf(`{method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: %q}`, form)
	if got := p.fetch(b+"/.well-known/mercure", noCreds); len(got) < 4 || got[:4] != "401 " {
		t.Fatalf("publishing from A without credentials: %q, want 401", got)
	}
}
