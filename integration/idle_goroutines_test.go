package integration

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestIdleStreamsHoldNoGoroutine: 10,000 idle HTTP/1.1 subscribers add no
// goroutines to Caddy (within a small constant): once its replay is out, a
// stream is served by an event loop (internal/stream/loop_linux.go). The
// streams stay live: one publish reaches every one of them.
func TestIdleStreamsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the event loop is Linux's epoll; elsewhere a stream keeps its goroutine")
	}
	const streams = 10000
	const slack = 50                  // the loops, a watcher per route, the admin request
	drillRaiseNofile(t, streams+1024) // each side (this process, Caddy) holds one end
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish
}
`)
	addr := strings.TrimPrefix(c.base, "http://")
	before := caddyGoroutines(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	subs := drillOpenStreams(ctx, t, addr, "/events?topic=news", streams, 100)

	// A stream's goroutine ends once the loop has it; wait for that (the
	// last few may still be handing over), not for a fixed time.
	var after int
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = caddyGoroutines(t, c)
		if after <= before+slack || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling Caddy's count, not synchronising
	}
	t.Logf("Caddy's goroutines: %d before, %d with %d idle streams", before, after, streams)
	if after > before+slack {
		t.Fatalf("%d idle streams hold %d goroutines (%d before); want at most %d more", streams, after-before, before, slack)
	}

	published := publishData(t, c.base+"/publish", "news", "to everyone").ID
	for i, s := range subs {
		_ = s.conn.SetReadDeadline(time.Now().Add(eventWait))
		for {
			line, err := s.br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d: waiting for the event: %v", i, err)
			}
			if line == "id: "+published+"\n" {
				break
			}
		}
	}
}

// caddyGoroutines is how many goroutines Caddy runs, from its admin
// endpoint's goroutine profile.
func caddyGoroutines(t *testing.T, c *caddyProc) int {
	t.Helper()
	body := string(drillAdminGet(t, c, "/debug/pprof/goroutine?debug=1"))
	var n int
	if _, err := fmt.Sscanf(body, "goroutine profile: total %d", &n); err != nil {
		t.Fatalf("reading the goroutine count: %v (%.80q)", err, body)
	}
	return n
}
