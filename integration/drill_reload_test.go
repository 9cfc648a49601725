package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// drillStormSite is reloaded with its heartbeat alternating, so every reload is
// a real one (Caddy skips a config equal to the running one). The ring is
// large enough that nothing is evicted: a reset would be a failure.
const drillStormSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic storm {
			replay 100000
			replay_size 64MiB
		}
		heartbeat HEARTBEAT
	}
	sse_publish /publish
}
`

func drillStormConfig(i int) string {
	return strings.Replace(drillStormSite, "HEARTBEAT", []string{"1s", "2s"}[i%2], 1)
}

// drillReconnectingClient behaves like EventSource: when its stream ends it
// reconnects by itself with Last-Event-ID (at once, ignoring the retry hint,
// which is harsher than a browser). It records every event it receives.
type drillReconnectingClient struct {
	url string
	hc  *http.Client

	got        []string // data of every event, in arrival order
	reconnects int
	noHint     int // streams the server ended without a retry: hint
	err        error
}

func (rc *drillReconnectingClient) run(ctx context.Context, t *testing.T, s *subscriber) {
	last := ""
	for {
		for ev := range s.events {
			if ev.Type == "reset" {
				rc.err = fmt.Errorf("reset after %d events: %s", len(rc.got), ev.Data)
				s.close()
				return
			}
			rc.got = append(rc.got, ev.Data)
			last = ev.LastEventID
			if ev.Data == "end" {
				s.close()
				return
			}
		}
		if ctx.Err() != nil {
			rc.err = fmt.Errorf("gave up after %d events: %v", len(rc.got), ctx.Err())
			s.close()
			return
		}
		if !strings.Contains(s.rawString(), "\nretry: ") {
			rc.noHint++
		}
		s.close()
		// Reconnect; a connection refused or reset in the middle of a reload
		// is retried, a bounded number of times.
		var err error
		for attempt := 0; ; attempt++ {
			s, err = drillTrySubscribe(ctx, t, rc.hc, rc.url, "Last-Event-ID: "+last)
			if err == nil {
				if err = s.drillAwaitOpening(eventWait); err == nil {
					break
				}
				s.close()
			}
			if attempt == 20 || ctx.Err() != nil {
				rc.err = fmt.Errorf("reconnect after %d events failed: %v", len(rc.got), err)
				return
			}
		}
		rc.reconnects++
	}
}

// Reload storm: subscribers that reconnect by themselves, a publisher
// publishing all along, ten real reloads, then an end marker. Every
// subscriber must end with every event exactly once, in order, and no
// publish may fail.
func TestDrillReloadStorm(t *testing.T) {
	const (
		clients = 20
		reloads = 10
	)
	c := startCaddy(t, drillStormConfig(0))
	pub := c.base + "/publish"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Every client resumes from this id even on its first connect, so what
	// is published before it is ready is replayed, not lost.
	startID := publishData(t, pub, "storm", "start").ID

	var pubRetries atomic.Int64
	var pubDurations []time.Duration
	start := time.Now()
	rcs, total, reloadTimes := runReloadStorm(t, ctx, cancel, reloadStorm{
		clients: clients, reloads: reloads, every: 25,
		streamURL: c.base + "/events?topic=storm", startID: startID,
		publish: func(i int) error {
			t0 := time.Now()
			err := drillPost(ctx, &pubRetries, func() *http.Request {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, pub+"?topic=storm", strings.NewReader(seqData(i)))
				req.Header.Set("Content-Type", "text/plain")
				return req
			})
			pubDurations = append(pubDurations, time.Since(t0))
			return err
		},
		reload: func(r int) { c.reload(drillStormConfig(r)) },
		end:    func() { publishData(t, pub, "storm", "end") },
	})
	t.Logf("%d reloads (each %s) while %d events were published in %v; publish %s; %d publishes resent after a connection reset",
		reloads, drillDurations(reloadTimes), total, time.Since(start).Round(time.Millisecond), drillDurations(pubDurations), pubRetries.Load())

	checkReconnected(t, rcs, total, "events")
	if st := c.stats(t, "default"); st.DroppedSlow != 0 {
		t.Errorf("stats after the storm: %+v; nobody should have been dropped as slow", st)
	}
	if lines := drillErrorLines(c.logs()); len(lines) > 0 {
		t.Errorf("caddy logged errors during the storm:\n%s", strings.Join(lines, "\n"))
	}
}

// drillErrorLines returns Caddy's error-level log lines.
func drillErrorLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"level":"error"`) || strings.Contains(l, `"level":"fatal"`) || strings.Contains(l, `"level":"panic"`) {
			out = append(out, l)
		}
	}
	return out
}

// checkReconnected checks what each reconnecting client received: every
// one of the total numbered items (seqData) then "end", exactly once, in
// order, each closed stream with a retry: hint. what names the items in
// messages ("events", "updates").
func checkReconnected(t *testing.T, rcs []*drillReconnectingClient, total int, what string) {
	t.Helper()
	var reconnects []string
	for i, rc := range rcs {
		reconnects = append(reconnects, fmt.Sprint(rc.reconnects))
		if rc.err != nil {
			t.Errorf("client %d: %v", i, rc.err)
			continue
		}
		if rc.noHint > 0 {
			t.Errorf("client %d: %d of its streams were closed without a retry: hint", i, rc.noHint)
		}
		if len(rc.got) != total+1 {
			t.Errorf("client %d received %d %s, want %d", i, len(rc.got), what, total+1)
		}
		for j := 0; j < len(rc.got); j++ {
			want := "end"
			if j < total {
				want = seqData(j)
			}
			if rc.got[j] != want {
				t.Errorf("client %d: item %d of its %s is %q, want %q (gap, duplicate, reorder, or one it may not see)", i, j, what, rc.got[j], want)
				break
			}
		}
	}
	t.Logf("reconnects per client: %s", strings.Join(reconnects, " "))
}

// reloadStorm describes a reload drill: clients reconnecting subscribers of
// streamURL, each resuming from startID on its first connect, while a
// publisher publishes item after item and the server is reloaded reloads
// times, each after every more items were published.
type reloadStorm struct {
	clients, reloads, every int
	streamURL, startID      string
	publish                 func(i int) error // publishes item i (seqData(i)); called from one goroutine
	reload                  func(r int)
	end                     func() // publishes the end marker, once publishing stopped
}

// runReloadStorm runs the drill and returns the clients, once each has
// received the end marker, how many items were published, and how long
// each reload took.
func runReloadStorm(t *testing.T, ctx context.Context, cancel context.CancelFunc, d reloadStorm) ([]*drillReconnectingClient, int, []time.Duration) {
	t.Helper()
	// One connection per request: a keep-alive connection of the old server
	// may be closed under a request (a POST is never retried by Go's client,
	// and retrying it would duplicate the event).
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	rcs := make([]*drillReconnectingClient, d.clients)
	var wg sync.WaitGroup
	for i := range rcs {
		rcs[i] = &drillReconnectingClient{url: d.streamURL, hc: hc}
		s, err := drillTrySubscribe(ctx, t, hc, d.streamURL, "Last-Event-ID: "+d.startID)
		if err == nil {
			err = s.drillAwaitOpening(eventWait)
		}
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rcs[i].run(ctx, t, s)
		}()
	}

	// The publisher: sequential publishes, as fast as they go, until told
	// to stop.
	var published atomic.Int64
	progress := make(chan struct{}, 1)
	stop := make(chan struct{})
	pubDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				pubDone <- nil
				return
			default:
			}
			if err := d.publish(i); err != nil {
				pubDone <- err
				return
			}
			published.Add(1)
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	// awaitPublished waits until the publisher has got n more answers, so
	// that publishing interleaves with every reload.
	awaitPublished := func(n int64) {
		t.Helper()
		target := published.Load() + n
		deadline := time.NewTimer(eventWait)
		defer deadline.Stop()
		for published.Load() < target {
			select {
			case <-progress:
			case err := <-pubDone:
				t.Fatalf("publisher stopped: %v", err)
			case <-deadline.C:
				t.Fatalf("publisher made no progress: %d published", published.Load())
			}
		}
	}

	var reloadTimes []time.Duration
	for r := 1; r <= d.reloads; r++ {
		awaitPublished(int64(d.every))
		t0 := time.Now()
		d.reload(r)
		reloadTimes = append(reloadTimes, time.Since(t0))
	}
	awaitPublished(int64(d.every))
	close(stop)
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	total := int(published.Load())
	d.end()

	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(60 * time.Second):
		cancel()
		<-allDone
		t.Fatalf("clients did not all receive the end marker within 60s")
	}
	return rcs, total, reloadTimes
}

// drillPost sends the request newReq builds until the server reads it,
// and checks it is answered 200. Caddy listens with SO_REUSEPORT and
// closes the old configuration's socket on reload: a connection still in
// its accept queue is reset before its request is read (plain "respond"
// sites show the same). The request was not served, so it is sent again
// (counted in retries); were it served after all, the subscribers would
// see a duplicate.
func drillPost(ctx context.Context, retries *atomic.Int64, newReq func() *http.Request) error {
	pubClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for attempt := 0; ; attempt++ {
		req := newReq()
		resp, err := pubClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("publish to %s: %s", req.URL, resp.Status)
			}
			return nil
		}
		if attempt == 5 || ctx.Err() != nil {
			return fmt.Errorf("publish to %s: %v", req.URL, err)
		}
		retries.Add(1)
	}
}
