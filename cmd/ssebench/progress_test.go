package main

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// lineWriter hands each written line to a channel.
type lineWriter struct {
	mu     sync.Mutex
	closed bool
	lines  chan string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		panic("a progress line after stop returned: " + string(b))
	}
	w.lines <- string(b)
	return len(b), nil
}

// Progress lines carry the counts as they stand, and none follows stop.
func TestProgressLinesFollowTheCounts(t *testing.T) {
	w := &lineWriter{lines: make(chan string, 1000)}
	var counts tally
	stop := startProgress(w, 5*time.Millisecond, time.Now(), 7, &counts)
	counts.delivered.Store(1234)
	counts.dropped.Store(2)
	deadline := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case line := <-w.lines:
			if !strings.HasPrefix(line, "t=") || !strings.Contains(line, " subscribers=7 ") || !strings.HasSuffix(line, "/s dropped=0\n") && !strings.HasSuffix(line, "/s dropped=2\n") {
				t.Fatalf("progress line %q, want t=<d> subscribers=7 delivered=<n> rate=<r>/s dropped=<n>", line)
			}
			found = strings.Contains(line, " delivered=1234 ") && strings.HasSuffix(line, " dropped=2\n")
		case <-deadline:
			t.Fatal("no progress line with delivered=1234 and dropped=2")
		}
	}
	stop()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	stop() // a second stop is harmless
}
