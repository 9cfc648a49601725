package integration

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// raiseNofile lifts this process's RLIMIT_NOFILE to at least n (Caddy,
// started afterwards, inherits it). Setting it explicitly also stops Go from
// restoring the original soft limit in child processes.
func drillRaiseNofile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Max < n {
		lim.Max = n // works as root; otherwise Setrlimit says why
	}
	lim.Cur = max(lim.Cur, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit NOFILE to %d: %v", n, err)
	}
}

// SIGTERM with 1,000 open streams: Caddy exits within a couple of seconds,
// with a clean exit status and no error in its log, and every stream was
// closed with a retry: hint first.
func TestDrillShutdownWith1000Streams(t *testing.T) {
	const streams = 1000
	drillRaiseNofile(t, 4*streams+1024)
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish
}
`)
	addr := strings.TrimPrefix(c.base, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	opening := time.Now()
	subs := drillOpenStreams(ctx, t, addr, "/events?topic=news", streams, 50)
	if st := c.stats(t, "default"); st.Subscribers != streams {
		t.Fatalf("hub reports %d subscribers, want %d", st.Subscribers, streams)
	}
	t.Logf("%d streams open after %v", streams, time.Since(opening).Round(time.Millisecond))

	logBefore := len(c.logs())
	took := c.stop(5 * time.Second) // the safety net; a couple of seconds is the goal
	if c.exitErr != nil {
		t.Errorf("caddy's exit status: %v", c.exitErr)
	}
	shutdownLog := c.logs()[logBefore:]
	if lines := drillErrorLines(shutdownLog); len(lines) > 0 {
		t.Errorf("caddy logged errors while shutting down:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(shutdownLog, "shutdown complete") {
		t.Errorf("caddy's log does not end with a complete shutdown:\n%s", shutdownLog)
	}
	t.Logf("caddy exited %v after SIGTERM with %d open streams (its log: %v from the signal to \"shutdown complete\"; the rest is process exit, long under -race)",
		took.Round(time.Millisecond), streams, drillLogSpan(shutdownLog, "shutting down apps", "shutdown complete").Round(time.Millisecond))

	noHint := 0
	for i, s := range subs {
		rest, err := s.rest(eventWait)
		if err != nil {
			t.Fatalf("stream %d not closed at exit: %v", i, err)
		}
		if !strings.Contains(rest, "\nretry: ") && !strings.HasPrefix(rest, "retry: ") {
			noHint++
		}
	}
	if noHint > 0 {
		t.Errorf("%d of %d streams were closed without a retry: hint", noHint, streams)
	}
}

// logSpan is the time between the first log lines containing from and to,
// by their "ts" fields; 0 if either is missing.
func drillLogSpan(log, from, to string) time.Duration {
	ts := func(substr string) float64 {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, substr) {
				var v struct {
					TS float64 `json:"ts"`
				}
				if json.Unmarshal([]byte(l), &v) == nil {
					return v.TS
				}
			}
		}
		return 0
	}
	a, b := ts(from), ts(to)
	if a == 0 || b == 0 {
		return 0
	}
	return time.Duration((b - a) * float64(time.Second))
}
