package integration

// Headless Chromium against the demo page (demo/index.html) of
// Caddyfile.example, served by a real Caddy. The page is the product's
// first impression and the only test of caddy-sse against a real browser's
// EventSource: its reconnect rules, Last-Event-ID handling and the way it
// gives up on errors are what the module is designed around.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserResume: whenever the server closes the stream (a reload, a
// restart of the stream), the browser
// reconnects by itself with Last-Event-ID, and the page shows every event
// exactly once, in order, including those published while it was away.
func TestBrowserResume(t *testing.T) {
	browser := newBrowser(t)
	site := exampleSite(t)
	c := startCaddy(t, site)
	p := openDemo(t, browser, c)
	h := &publisher{t: t, c: c}

	h.publish("notifications", "", "before any disconnect")
	h.publish("jobs", "progress", "progress before any disconnect")
	p.waitSeen("the first events", h.want)

	// disconnect makes the server close the page's stream with cause, then
	// publishes while the browser waits to reconnect (its retry delay is at
	// least 0.5 s: a reload's hint, else the example's `retry 2s`), waits
	// for the page to be back and caught up, and publishes live again.
	disconnect := func(t *testing.T, cause func()) {
		h.t = t
		errorsBefore := len(p.errors())
		cause()
		p.waitJS("the server closing the stream", fmt.Sprintf(`window.sseTest.errors.length > %d`, errorsBefore))
		if e := p.errors()[errorsBefore]; e.ReadyState != 0 {
			t.Fatalf("after the stream closed, readyState is %d, want 0 (CONNECTING: the browser will retry)", e.ReadyState)
		}
		for i := range 3 {
			r := h.publish([]string{"notifications", "jobs", "answers"}[i], []string{"", "progress", "token"}[i],
				fmt.Sprintf("%s: published while away %d", t.Name(), i))
			if r.Delivered != 0 {
				t.Fatalf("an event published while the browser was away was delivered to %d subscribers: "+
					"the browser had already reconnected, so this does not test a resume", r.Delivered)
			}
		}
		p.waitOpen("the browser reconnecting by itself")
		if st := c.stats(t, "default"); st.Subscribers != 1 {
			t.Errorf("after the reconnect the hub has %d subscribers, want 1 (the old stream's must be gone)", st.Subscribers)
		}
		p.waitSeen("the events missed while away, replayed", h.want)
		h.publish("notifications", "", t.Name()+": live after the reconnect")
		p.waitSeen("a live event after the reconnect", h.want)
	}

	ok := t.Run("caddy reload", func(t *testing.T) {
		disconnect(t, func() { c.reload(exampleSite(t, [2]string{"heartbeat 15s", "heartbeat 10s"})) })
	})
	ok = ok && t.Run("a burst larger than its queue", func(t *testing.T) {
		// A queue of one event: the first reload moves the page to that
		// configuration (one more reconnect), then 50 events published in
		// one request reach the page, which is reading: a burst larger
		// than the queue does not drop a subscriber that keeps up.
		queue1 := exampleSite(t, [2]string{"retry 2s", "retry 2s\n\t\tqueue 1"})
		disconnect(t, func() { c.reload(queue1) })
		h.t = t
		before := c.stats(t, "default").DroppedSlow
		var batch []map[string]any
		for i := range 50 {
			name := []string{"", "progress", "reading"}[i%3]
			ev := map[string]any{"topic": demoTopicOf[eventType(name)], "data": fmt.Sprintf("burst %02d", i)}
			if name != "" {
				ev["event"] = name
			}
			batch = append(batch, ev)
		}
		res := h.publishArray(batch)
		for _, r := range res {
			if r.Delivered != 1 {
				t.Fatalf("delivered counts %v: want 1 for every event of the burst", delivered(res))
			}
		}
		p.waitSeen("the whole burst", h.want)
		if after := c.stats(t, "default").DroppedSlow; after != before {
			t.Errorf("dropped_slow went from %d to %d: the reading page was dropped", before, after)
		}
	})
	ok = ok && t.Run("stream restarted by reloading back", func(t *testing.T) {
		disconnect(t, func() { c.reload(site) })
	})
	if !ok {
		return
	}
	h.t = t

	// The whole session: every event exactly once, in order (checked at
	// each step too), and each reconnect carried Last-Event-ID = the id of
	// the last event the page had seen when its stream broke.
	p.waitSeen("the whole session", h.want)
	errs, reqs := p.errors(), p.streamRequests()
	if len(errs) != 3 {
		t.Errorf("the stream broke %d times, want 3 (3 reloads; the burst drops nothing): %+v", len(errs), errs)
	}
	if len(reqs) != len(errs)+1 {
		t.Fatalf("the page sent %d event-stream requests for %d breaks, want one more: %+v", len(reqs), len(errs), reqs)
	}
	if reqs[0].LastEventID != "" {
		t.Errorf("the first connect sent Last-Event-ID %q, want none", reqs[0].LastEventID)
	}
	for i, e := range errs {
		r := reqs[i+1]
		if r.LastEventID == "" || r.LastEventID != e.Last {
			t.Errorf("reconnect %d sent Last-Event-ID %q, want %q (the last id seen before the break)", i+1, r.LastEventID, e.Last)
		}
		if !strings.Contains(r.URL, "/events?topic=notifications&topic=metrics&topic=jobs&topic=answers") {
			t.Errorf("reconnect %d went to %s", i+1, r.URL)
		}
	}
}

func delivered(res []publishResult) []int {
	out := make([]int, len(res))
	for i, r := range res {
		out[i] = r.Delivered
	}
	return out
}

// TestBrowserResetEvicted: a page that resumes from an id the ring no
// longer holds gets the `reset` event (reason evicted), then what is still
// retained; the reset's id lets a later resume go on without another reset.
func TestBrowserResetEvicted(t *testing.T) {
	browser := newBrowser(t)
	c := startCaddy(t, exampleSite(t, [2]string{"replay 100\n\t\t\treplay_on_connect 5", "replay 3\n\t\t\treplay_on_connect 3"}))
	p := openDemo(t, browser, c)
	h := &publisher{t: t, c: c}

	first := h.publish("notifications", "", "seen before leaving")
	p.waitSeen("the first event", h.want)
	if stored := eval[string](p.tab, `sessionStorage.getItem('caddy-sse-demo-last-id')`); stored != first.ID {
		t.Fatalf("the page stored last id %q, want %q", stored, first.ID)
	}

	// The page stops listening; meanwhile 5 events go to notifications, whose ring
	// keeps 3: the two after the page's id are evicted.
	eval[bool](p.tab, `(es.close(), true)`)
	var missed []seenEvent
	for i := range 5 {
		data := fmt.Sprintf("published while away %d", i)
		r := h.publish("notifications", "", data)
		missed = append(missed, seenAs("message", r.ID, data))
	}

	// A reload: the page resumes from the stored id via ?last_event_id=.
	p.do("reload the page", chromedp.Reload())
	p.waitOpen("the reloaded page's stream opens")
	p.waitJS("the reset and the retained events", `window.sseDemo.seen.length >= 4`)
	got := p.seen()
	want := append([]seenEvent{seenAs("reset", missed[1].ID, "")}, missed[2:]...)
	if len(got) != len(want) || got[0].Type != "reset" {
		t.Fatalf("after resuming from an evicted id the page saw:\n%s", diffSeen(got, want))
	}
	var reset struct {
		Reason      string `json:"reason"`
		LastEventID string `json:"last_event_id"`
	}
	if err := json.Unmarshal([]byte(got[0].Data), &reset); err != nil || reset.Reason != "evicted" || reset.LastEventID != first.ID {
		t.Errorf("reset data %q: want reason evicted, last_event_id %q", got[0].Data, first.ID)
	}
	// docs/subscribing.md: the reset's id is the newest evicted id.
	want[0].Data = got[0].Data
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after resuming from an evicted id the page saw:\n%s", diffSeen(got, want))
	}
	if n := eval[int](p.tab, `document.querySelectorAll('#events li.reset').length`); n != 1 {
		t.Errorf("the page highlights %d reset items, want 1", n)
	}
	if reqs := p.streamRequests(); !strings.Contains(reqs[len(reqs)-1].URL, "last_event_id="+url.QueryEscape(first.ID)) {
		t.Errorf("the reloaded page connected to %s, want last_event_id=%s", reqs[len(reqs)-1].URL, first.ID)
	}

	// Resuming again from where the page is now (after the reset) must not
	// reset again, and nothing is replayed twice.
	p.do("reload the page again", chromedp.Reload())
	p.waitOpen("the page reloaded again")
	h.want = nil
	h.publish("jobs", "progress", "live after the second reload")
	p.waitSeen("no second reset, only the new event", h.want)
}

// TestBrowserStopsRetrying: a 404 (a topic not declared on the route) and a
// 403 (a placeholder topic that does not resolve) make the browser's
// EventSource give up for good: readyState CLOSED, and no further request
// reaches Caddy. A control proves the same observation sees retries.
func TestBrowserStopsRetrying(t *testing.T) {
	browser := newBrowser(t)
	probeDir := t.TempDir()
	const probe = `<!doctype html>
<meta charset="utf-8">
<title>EventSource probe</title>
<script>
  // Opens the EventSource named in the fragment and records what it does.
  window.probe = { opens: 0, errors: 0, messages: 0, states: [] };
  window.es = new EventSource(decodeURIComponent(location.hash.slice(1)));
  es.onopen = () => { probe.opens++; };
  es.onmessage = () => { probe.messages++; };
  es.onerror = () => { probe.errors++; probe.states.push(es.readyState); };
</script>
`
	if err := os.WriteFile(filepath.Join(probeDir, "probe.html"), []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	// The control: a valid event stream that ends at once, asking for a
	// reconnect after 100 ms.
	if err := os.WriteFile(filepath.Join(probeDir, "ends.sse"), []byte("retry: 100\ndata: x\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`
	# Added by the browser test: an access log (to stderr) to count
	# requests, a placeholder topic, and the probe page.
	log
	sse /private {
		topic user/{http.request.header.X-User}
	}
	handle_path /probe/* {
		root * %s
		header /ends.sse Content-Type text/event-stream
		file_server
	}

	encode gzip zstd`, strconv.Quote(probeDir))
	c := startCaddy(t, exampleSite(t, [2]string{"\n\tencode gzip zstd", extra}))

	// quiet is how long no request may follow a refusal. A browser that
	// retried would do so after its reconnection delay: no retry: field
	// reached it, so that is its default of about 3 s.
	const quiet = 5 * time.Second

	for _, tc := range []struct {
		name, uri string
		status    int
	}{
		{"404 undeclared topic", "/events?topic=nope", 404},
		{"403 unresolvable placeholder topic", "/private", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTab(t, browser)
			p.do("load the probe page", chromedp.Navigate(c.base+"/probe/probe.html#"+url.QueryEscape(tc.uri)))
			p.waitJS("the EventSource to close", `es.readyState === EventSource.CLOSED`)
			if n := watchAccessLog(c, tc.uri, browserWait, func(n int) bool { return n >= 1 }); n != 1 {
				t.Fatalf("Caddy logged %d requests to %s, want 1", n, tc.uri)
			}
			if line := accessLogLines(c, tc.uri)[0]; !strings.Contains(line, fmt.Sprintf(`"status":%d`, tc.status)) {
				t.Fatalf("the request was not answered %d: %s", tc.status, line)
			}
			if n := watchAccessLog(c, tc.uri, quiet, func(n int) bool { return n > 1 }); n != 1 {
				t.Fatalf("after a %d the browser sent %d requests to %s within %v, want 1: it kept retrying\n%s",
					tc.status, n, tc.uri, quiet, strings.Join(accessLogLines(c, tc.uri), "\n"))
			}
			type probeState struct {
				Opens, Errors int
				States        []int
			}
			st := eval[probeState](p, `window.probe`)
			if rs := eval[int](p, `es.readyState`); rs != 2 || st.Opens != 0 || st.Errors != 1 {
				t.Fatalf("after %v: readyState %d, %+v; want CLOSED (2), never opened, one error", quiet, rs, st)
			}
		})
	}

	t.Run("control: a stream that ends is retried", func(t *testing.T) {
		t.Parallel()
		const uri = "/probe/ends.sse"
		p := newTab(t, browser)
		p.do("load the probe page", chromedp.Navigate(c.base+"/probe/probe.html#"+url.QueryEscape(uri)))
		if n := watchAccessLog(c, uri, quiet, func(n int) bool { return n >= 3 }); n < 3 {
			t.Fatalf("a stream that ends was requested %d times within %v, want at least 3: "+
				"the observation does not see retries\npage: %s", n, quiet, p.describe())
		}
	})
}
