package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/ssehub/caddy-sse/internal/testneeds"
)

// browserWait is the safety net of one awaited browser condition. Waits
// end as soon as the condition holds; this only bounds a failure.
const browserWait = 20 * time.Second

// browserLife bounds a whole browser: if a test hangs, Chromium is killed
// and every pending action fails.
const browserLife = 3 * time.Minute

// chromiumPath finds Chromium. Without it the browser tests cannot run: on
// CI that is a failure, elsewhere a skip reported at the end of the run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	return testneeds.Binary(t, "chromium", "the browser tests", "apt-get install -y chromium")
}

// newBrowser starts headless Chromium with a fresh profile and returns a
// context that holds it; each tab made from it with newTab is a separate page.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	life, cancelLife := context.WithTimeout(context.Background(), browserLife)
	actx, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(actx)
	// Registered after t.TempDir: runs first, so Chromium has exited before
	// its profile directory is removed.
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		cancel()
		cancelAlloc()
		cancelLife()
	})
	// The first Run starts the browser; it must not carry a short timeout,
	// which would stop the browser with it (browserLife bounds it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	return ctx
}

// streamRequest is one request the page sent for an event stream, as the
// browser reports it over the DevTools protocol.
type streamRequest struct {
	URL         string
	LastEventID string // the Last-Event-ID header as sent on the wire; "" when absent
}

// tab is one browser page.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	streams  []network.RequestID                   // event-stream requests, in the order sent
	urls     map[network.RequestID]string          // their URLs
	sentHdrs map[network.RequestID]network.Headers // every request's headers as sent
}

// newTab opens a tab in browser and records the event-stream requests it
// sends, with the headers that went on the wire (Chromium adds
// Last-Event-ID below the page, so only Network.requestWillBeSentExtraInfo
// shows it).
func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	p := &tab{t: t, ctx: ctx, urls: map[network.RequestID]string{}, sentHdrs: map[network.RequestID]network.Headers{}}
	err := chromedp.Listen(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if e.Type == network.ResourceTypeEventSource {
				p.streams = append(p.streams, e.RequestID)
				p.urls[e.RequestID] = e.Request.URL
			}
		case *network.EventRequestWillBeSentExtraInfo:
			p.sentHdrs[e.RequestID] = e.Headers
		}
	})
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	p.do("set the viewport", chromedp.EmulateViewport(1280, 900))
	return p
}

// do runs actions, bounded by browserWait.
func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is truthy in the page.
func (p *tab) waitJS(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
	if err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\npage: %s", what, expr, err, p.describe())
	}
}

// describe is the page's state for failure messages.
func (p *tab) describe() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href,
		state: document.getElementById('state') && document.getElementById('state').dataset.state,
		readyState: typeof es === 'undefined' ? null : es.readyState,
		seen: window.sseDemo && window.sseDemo.seen,
		probe: window.probe,
		sseTest: window.sseTest,
	}, null, 1)`))
	if err != nil {
		return fmt.Sprintf("(cannot read the page: %v)", err)
	}
	return fmt.Sprintf("%s\nevent-stream requests: %+v", v, p.streamRequests())
}

// streamRequests returns the event-stream requests the page has sent.
func (p *tab) streamRequests() []streamRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]streamRequest, len(p.streams))
	for i, id := range p.streams {
		out[i].URL = p.urls[id]
		for k, v := range p.sentHdrs[id] {
			if strings.EqualFold(k, "Last-Event-ID") {
				out[i].LastEventID = fmt.Sprint(v)
			}
		}
	}
	return out
}

// seenEvent is an entry of the demo page's window.sseDemo.seen, and what
// the test expects there.
type seenEvent struct {
	Topic string `json:"topic"`
	Type  string `json:"type"`
	ID    string `json:"id"`
	Data  string `json:"data"`
}

// demoTopicOf is the demo page's map from event name to topic: the SSE wire
// carries no topic, so each topic of the demo uses its own event names.
var demoTopicOf = map[string]string{
	"message": "notifications", "reading": "metrics", "progress": "jobs",
	"question": "answers", "token": "answers", "done": "answers", "reset": "stream",
}

// seenAs is the entry the page records for an event of type (the event
// name, "message" by default).
func seenAs(typ, id, data string) seenEvent {
	return seenEvent{Topic: demoTopicOf[typ], Type: typ, ID: id, Data: data}
}

// streamError is what the test's listener on the demo page's EventSource
// records at each error: the page's state when the stream broke.
type streamError struct {
	ReadyState int    `json:"readyState"`
	Seen       int    `json:"seen"` // events seen before the error
	Last       string `json:"last"` // the id of the last of them
}

// demoPage is the demo page of Caddyfile.example open in a tab.
type demoPage struct {
	*tab
	c *caddyProc
}

// openDemo loads the demo page in a new tab of browser, with its dashboard
// timer paused (?paused: the page publishes nothing by itself, so what it
// sees is what the test published), and waits until its stream is open. It adds one listener to the page's EventSource (the
// page's global `es`) that records every error, so that a test can tell
// when the stream broke and what the page had seen by then.
func openDemo(t *testing.T, browser context.Context, c *caddyProc) *demoPage {
	t.Helper()
	p := &demoPage{tab: newTab(t, browser), c: c}
	p.do("load the demo page", chromedp.Navigate(c.base+"/?paused"))
	p.waitOpen("the demo page's stream opens")
	p.instrument()
	return p
}

// instrument adds the error recorder to the page (again after a reload).
func (p *demoPage) instrument() {
	p.t.Helper()
	eval[bool](p.tab, `(() => {
		window.sseTest = { errors: [] };
		es.addEventListener('error', () => {
			const seen = window.sseDemo.seen;
			window.sseTest.errors.push({ readyState: es.readyState, seen: seen.length,
				last: seen.length ? seen[seen.length - 1].id : '' });
		});
		return true;
	})()`)
}

// waitOpen waits until the page's EventSource is open and the page says so.
func (p *demoPage) waitOpen(what string) {
	p.t.Helper()
	p.waitJS(what, `typeof es !== 'undefined' && es.readyState === EventSource.OPEN &&
		document.getElementById('state').dataset.state === 'open' &&
		document.getElementById('stateText').textContent === 'live'`)
}

func (p *demoPage) seen() []seenEvent {
	p.t.Helper()
	return eval[[]seenEvent](p.tab, `window.sseDemo.seen`)
}

func (p *demoPage) errors() []streamError {
	p.t.Helper()
	return eval[[]streamError](p.tab, `window.sseTest.errors`)
}

// waitSeen waits until the page has seen len(want) events and checks that
// they are exactly want, in order.
func (p *demoPage) waitSeen(what string, want []seenEvent) {
	p.t.Helper()
	p.waitJS(what, fmt.Sprintf(`window.sseDemo.seen.length >= %d`, len(want)))
	got := p.seen()
	if !reflect.DeepEqual(got, want) {
		p.t.Fatalf("%s: the page saw %d events, want exactly %d:\n%s\nevent-stream requests: %+v",
			what, len(got), len(want), diffSeen(got, want), p.streamRequests())
	}
}

// diffSeen lists got and want side by side.
func diffSeen(got, want []seenEvent) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = fmt.Sprintf("%s/%s %s %q", got[i].Topic, got[i].Type, got[i].ID, got[i].Data)
		}
		if i < len(want) {
			w = fmt.Sprintf("%s/%s %s %q", want[i].Topic, want[i].Type, want[i].ID, want[i].Data)
		}
		mark := "  "
		if g != w {
			mark = "!="
		}
		fmt.Fprintf(&b, "  %3d %s got %-50s want %s\n", i, mark, g, w)
	}
	return b.String()
}

// publisher publishes to a Caddy with real HTTP POSTs to /_sse/publish and
// keeps what the demo page must see, in order.
type publisher struct {
	t    *testing.T
	c    *caddyProc
	want []seenEvent
}

func eventType(event string) string {
	if event == "" {
		return "message"
	}
	return event
}

// publish publishes one event to topic ("" event name = default message).
func (h *publisher) publish(topic, event, data string) publishResult {
	h.t.Helper()
	ev := map[string]any{"topic": topic, "data": data}
	if event != "" {
		ev["event"] = event
	}
	r := publishJSON(h.t, h.c.base+"/_sse/publish", ev)
	h.want = append(h.want, seenAs(eventType(event), r.ID, data))
	return r
}

// publishArray publishes events as one JSON array in one request.
func (h *publisher) publishArray(events []map[string]any) []publishResult {
	h.t.Helper()
	b, _ := json.Marshal(events)
	status, body := post(h.t, client, h.c.base+"/_sse/publish", "application/json", bytes.NewReader(b))
	mustStatus(h.t, "publish an array", status, 200, body)
	var res []publishResult
	if err := json.Unmarshal(body, &res); err != nil || len(res) != len(events) {
		h.t.Fatalf("publish answer %s: %v (want %d results)", body, err, len(events))
	}
	for i, ev := range events {
		name, _ := ev["event"].(string)
		h.want = append(h.want, seenAs(eventType(name), res[i].ID, ev["data"].(string)))
	}
	return res
}

// exampleSite is ../Caddyfile.example made runnable by a test: its global
// options block dropped (startCaddy writes its own), the site at
// http://127.0.0.1:{PORT} instead of http://:{$PORT:8080}, and `root *
// demo` absolute; everything else as written. Each edit replaces text that
// must occur exactly once, so a change of the example fails loudly here.
func exampleSite(t *testing.T, edits ...[2]string) string {
	t.Helper()
	b, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	site := dropGlobalOptions(t, string(b))
	demo, err := filepath.Abs("../demo")
	if err != nil {
		t.Fatal(err)
	}
	site = replaceOnce(t, site, "http://:{$PORT:8080} {", "http://127.0.0.1:{PORT} {")
	site = replaceOnce(t, site, "root * demo", "root * "+strconv.Quote(demo))
	for _, e := range edits {
		site = replaceOnce(t, site, e[0], e[1])
	}
	return site
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("Caddyfile.example: %q occurs %d times, the test expects it once; update the browser test", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// dropGlobalOptions removes a Caddyfile's global options block: a block
// opened by a lone "{" before any site address.
func dropGlobalOptions(t *testing.T, caddyfile string) string {
	t.Helper()
	lines := strings.SplitAfter(caddyfile, "\n")
	for i, line := range lines {
		code := strings.TrimSpace(stripComment(line))
		if code == "" {
			continue
		}
		if code != "{" {
			return caddyfile // the first token is a site address: no global block
		}
		depth := 0
		for j := i; j < len(lines); j++ {
			code := stripComment(lines[j])
			depth += strings.Count(code, "{") - strings.Count(code, "}")
			if depth == 0 {
				return strings.Join(lines[:i], "") + strings.Join(lines[j+1:], "")
			}
		}
		t.Fatal("Caddyfile.example: the global options block does not end")
	}
	return caddyfile
}

func stripComment(line string) string {
	if i := strings.Index(line, "#"); i >= 0 {
		return line[:i]
	}
	return line
}

// artifactsDir is where tests leave files for people to look at: env
// SSE_TEST_ARTIFACTS, by default integration/artifacts/.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SSE_TEST_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// accessLogCount counts the entries of Caddy's access log (a site with
// `log` writes them to stderr, which caddyProc keeps) for requests to uri.
func accessLogCount(c *caddyProc, uri string) int {
	n := 0
	for _, line := range strings.Split(c.logs(), "\n") {
		if strings.Contains(line, `"logger":"http.log.access`) && strings.Contains(line, `"uri":"`+uri+`"`) {
			n++
		}
	}
	return n
}

// accessLogLines returns those entries.
func accessLogLines(c *caddyProc, uri string) []string {
	var out []string
	for _, line := range strings.Split(c.logs(), "\n") {
		if strings.Contains(line, `"logger":"http.log.access`) && strings.Contains(line, `"uri":"`+uri+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// watchAccessLog watches the count of requests to uri until done(count)
// holds or bound passes, and returns the count then. It wakes on every new
// log line; it does not poll.
func watchAccessLog(c *caddyProc, uri string, bound time.Duration, done func(n int) bool) int {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		grew := c.logGrew
		c.mu.Unlock()
		n := accessLogCount(c, uri)
		if done(n) {
			return n
		}
		select {
		case <-grew:
		case <-c.exited:
			return accessLogCount(c, uri)
		case <-deadline.C:
			return accessLogCount(c, uri)
		}
	}
}
