package integration

// Helpers shared by the drills (drill_*_test.go): admin readiness polling,
// Caddy's own runtime numbers, raw TCP subscribers, and a subscribe that
// reports errors instead of failing the test, for clients running in their
// own goroutines.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// drillAdmin talks to Caddy's admin endpoint on a fresh connection each
// time, so the drills' own polling leaves no keep-alive connection (and its
// goroutine) behind in the numbers they read.
var drillAdmin = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// drillPollInterval is how often the drills poll the admin API while
// waiting for something that has no event of its own (goroutines winding
// down, a subscriber count dropping).
const drillPollInterval = 20 * time.Millisecond

func drillAdminGet(t *testing.T, c *caddyProc, path string) []byte {
	t.Helper()
	b, err := drillAdminGetErr(c, path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drillAdminGetErr is drillAdminGet for goroutines other than the test's.
func drillAdminGetErr(c *caddyProc, path string) ([]byte, error) {
	resp, err := drillAdmin.Get("http://" + c.adminAddr + path)
	if err != nil {
		return nil, fmt.Errorf("admin GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin GET %s: %s %v: %.200s", path, resp.Status, err, b)
	}
	return b, nil
}

// drillGoroutines reads Caddy's goroutine count from the first line of
// /debug/pprof/goroutine?debug=1 ("goroutine profile: total N").
func drillGoroutines(t *testing.T, c *caddyProc) int {
	t.Helper()
	b := drillAdminGet(t, c, "/debug/pprof/goroutine?debug=1")
	line, _, _ := strings.Cut(string(b), "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(line, "goroutine profile: total "))
	if err != nil {
		t.Fatalf("goroutine profile: unexpected first line %q", line)
	}
	return n
}

// drillGoroutineDump is the full goroutine profile, for failure messages.
func drillGoroutineDump(t *testing.T, c *caddyProc) string {
	t.Helper()
	return string(drillAdminGet(t, c, "/debug/pprof/goroutine?debug=1"))
}

// drillHeapInuse reads memstats.HeapInuse from Caddy's /debug/vars. With gc
// it first forces a collection through the heap profile's gc=1 parameter,
// so the number is what is live, not what is waiting to be collected.
func drillHeapInuse(t *testing.T, c *caddyProc, gc bool) uint64 {
	t.Helper()
	if gc {
		drillAdminGet(t, c, "/debug/pprof/heap?gc=1")
	}
	n, err := drillHeapInuseErr(c)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// heapInuse reads memstats.HeapInuse, for goroutines other than the test's.
func drillHeapInuseErr(c *caddyProc) (uint64, error) {
	b, err := drillAdminGetErr(c, "/debug/vars")
	if err != nil {
		return 0, err
	}
	var vars struct {
		Memstats struct {
			HeapInuse uint64 `json:"HeapInuse"`
		} `json:"memstats"`
	}
	if err := json.Unmarshal(b, &vars); err != nil {
		return 0, fmt.Errorf("debug/vars: %v", err)
	}
	return vars.Memstats.HeapInuse, nil
}

// drillPoll calls cond every drillPollInterval until it reports true or
// limit passes; it reports whether cond came true and how long it took.
// This is readiness polling of the admin API, for state changes that emit
// no event; the drills use it for nothing else.
func drillPoll(limit time.Duration, cond func() bool) (bool, time.Duration) {
	start := time.Now()
	tick := time.NewTicker(drillPollInterval)
	defer tick.Stop()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		if cond() {
			return true, time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return cond(), time.Since(start)
		}
	}
}

// drillWaitSubscribers polls the hub's subscriber count until it is want.
func drillWaitSubscribers(t *testing.T, c *caddyProc, hub string, want int, limit time.Duration) time.Duration {
	t.Helper()
	last := -1
	ok, took := drillPoll(limit, func() bool {
		last = c.stats(t, hub).Subscribers
		return last == want
	})
	if !ok {
		t.Fatalf("hub %q still reports %d subscribers after %v, want %d", hub, last, limit, want)
	}
	return took
}

// drillRawStream is a subscriber on a bare TCP connection: cheap enough to hold
// a thousand, and free to stop reading.
type drillRawStream struct {
	conn net.Conn
	br   *bufio.Reader
}

// drillOpenStreams opens n streams of path, one TCP connection each, at
// most concurrency at a time, failing the test if any fails; they are
// closed when the test ends.
func drillOpenStreams(ctx context.Context, t *testing.T, addr, path string, n, concurrency int) []*drillRawStream {
	t.Helper()
	subs := make([]*drillRawStream, n)
	errs := make([]error, n)
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			subs[i], errs[i] = drillDialStream(ctx, nil, addr, path)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range subs {
			if s != nil {
				s.conn.Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	return subs
}

// drillDialStream sends GET path over a new connection (dialed with d, or a
// default dialer) and reads up to the opening comment, after which the
// subscriber is registered.
func drillDialStream(ctx context.Context, d *net.Dialer, addr, path string, headers ...string) (*drillRawStream, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var extra strings.Builder
	for _, h := range headers {
		extra.WriteString(h + "\r\n")
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n", path, addr, extra.String()); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(eventWait))
	rs := &drillRawStream{conn: conn, br: bufio.NewReader(conn)}
	status, err := rs.br.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading status: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		conn.Close()
		return nil, fmt.Errorf("status %q", strings.TrimSpace(status))
	}
	for {
		line, err := rs.br.ReadString('\n')
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("waiting for the opening comment: %w", err)
		}
		if line == ": caddy-sse\n" {
			break
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	return rs, nil
}

// rest reads what is left until the server closes the connection, within
// limit; it fails if the connection is still open then.
func (rs *drillRawStream) rest(limit time.Duration) (string, error) {
	_ = rs.conn.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(rs.br)
	return string(b), err
}

// trySubscribe is subscribe for clients in their own goroutines: it
// reports errors instead of failing the test. The stream is decoded by
// go-sse like every other subscriber's.
func drillTrySubscribe(ctx context.Context, t *testing.T, c *http.Client, url string, headers ...string) (*subscriber, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	for _, h := range headers {
		if k, v, ok := strings.Cut(h, ":"); ok {
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &subscriber{t: t, resp: resp, events: make(chan sse.Event, 4096), cancel: cancel,
		closed: make(chan struct{}), grown: make(chan struct{})}
	go s.read()
	return s, nil
}

// drillAwaitOpening is ready() for clients in their own goroutines.
func (s *subscriber) drillAwaitOpening(limit time.Duration) error {
	if s.resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", s.resp.Status)
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		found := strings.Contains(s.raw.String(), ": caddy-sse\n")
		grown := s.grown
		s.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-grown:
		case <-s.closed:
			if strings.Contains(s.rawString(), ": caddy-sse\n") {
				return nil
			}
			return errors.New("stream ended before its opening comment")
		case <-deadline.C:
			return fmt.Errorf("no opening comment within %v", limit)
		}
	}
}

// stillServes asserts that Caddy is alive and that a fresh subscriber gets
// a freshly published event: the drills call it after each hostile act.
func drillStillServes(t *testing.T, c *caddyProc, after string) {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("caddy exited after %s: %v\n%s", after, c.exitErr, c.logs())
	default:
	}
	s := subscribe(t, client, c.base+"/events?topic=news").ready()
	defer s.close()
	data := "still serving after " + after
	res := publishData(t, c.base+"/publish", "news", data)
	if ev := s.next(); ev.Data != data || ev.LastEventID != res.ID {
		t.Fatalf("after %s: got %+v, want %q", after, ev, data)
	}
}

// smallRcvbuf is a dialer whose sockets have a tiny receive buffer, so a
// peer that stops reading fills up quickly.
func drillSmallRcvbuf() *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
}

// durationSummary renders min, median, p99 and max of ds.
func drillDurations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	p := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return fmt.Sprintf("n=%d min=%v p50=%v p99=%v max=%v", len(s), s[0], p(0.5), p(0.99), s[len(s)-1])
}

func drillMiB(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
