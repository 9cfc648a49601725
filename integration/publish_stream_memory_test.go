package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// eventSource writes n small events, "data: <i>\n\n", generated as they
// are read (the test holds none of them), then blocks until release is
// closed, so the request stays held while the test looks at Caddy, then
// ends the body.
type eventSource struct {
	n, next int
	pending []byte
	release chan struct{}
}

func (s *eventSource) Read(p []byte) (int, error) {
	if len(s.pending) == 0 && s.next == s.n {
		<-s.release
		return 0, io.EOF
	}
	w := 0
	for w < len(p) {
		if len(s.pending) == 0 {
			if s.next == s.n {
				break
			}
			s.pending = strconv.AppendInt(append(s.pending[:0], "data: "...), int64(s.next), 10)
			s.pending = append(s.pending, "\n\n"...)
			s.next++
		}
		c := copy(p[w:], s.pending)
		w += c
		s.pending = s.pending[c:]
	}
	return w, nil
}

// caddyRSS reads Caddy's resident set size from /proc.
func caddyRSS(t *testing.T, c *caddyProc) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "VmRSS:" {
			kib, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// streamSummary is the answer to a held text/event-stream publish.
type streamSummary struct {
	Published uint64 `json:"published"`
	FirstID   string `json:"first_id"`
	LastID    string `json:"last_id"`
	Delivered uint64 `json:"delivered"`
	Error     string `json:"error"`
}

// heldStream publishes src to topic through one held request and returns
// the channel its answer arrives on.
func heldStream(t *testing.T, c *caddyProc, topic string, src io.Reader) <-chan string {
	t.Helper()
	answer := make(chan string, 1)
	ctx := testCtx(t)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/publish?topic="+topic, src)
		if err != nil {
			answer <- err.Error()
			return
		}
		req.Header.Set("Content-Type", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	return answer
}

// seqOf is the sequence number of a memory hub's id ("<epoch>-<seq>"); the
// test reads it to check that first_id and last_id span the whole stream.
func seqOf(t *testing.T, id string) uint64 {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	if i < 0 || err != nil {
		t.Fatalf("id %q is not <epoch>-<seq>", id)
	}
	return n
}

// A held text/event-stream publish costs the same at its millionth event
// as at its first (docs/security.md, "Limits and the memory they imply"): Caddy's heap and RSS are
// measured before and after millions of events, while the request is still
// held, and the answer is a summary of a few bytes.
func TestHeldStreamMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("streams millions of events; skipped under -short")
	}
	events := 3_000_000
	if raceEnabled {
		events = 1_000_000 // the race detector slows Caddy about fivefold
	}
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic bulk
	}
	sse_publish /publish
}
`)
	waitPublished := func(want uint64) {
		t.Helper()
		if ok, _ := drillPoll(50*time.Second, func() bool { return c.stats(t, "default").Published >= want }); !ok {
			t.Fatalf("published %d, want %d", c.stats(t, "default").Published, want)
		}
	}

	// Warm up: fill the ring (replay 1000) and the parser's and server's
	// buffers with a first stream, so that what follows measures growth.
	warm := &eventSource{n: 20_000, release: make(chan struct{})}
	close(warm.release)
	if got := <-heldStream(t, c, "bulk", warm); !strings.HasPrefix(got, "200 ") {
		t.Fatalf("warm-up stream: %s", got)
	}
	base := c.stats(t, "default").Published
	heap0, rss0 := drillHeapInuse(t, c, true), caddyRSS(t, c)

	src := &eventSource{n: events, release: make(chan struct{})}
	start := time.Now()
	answer := heldStream(t, c, "bulk", src)
	waitPublished(base + uint64(events))
	took := time.Since(start)
	// Still held: whatever the handler keeps per event is live now.
	heap1, rss1 := drillHeapInuse(t, c, true), caddyRSS(t, c)
	close(src.release)
	got := <-answer
	t.Logf("%d events in %v (%.0f/s): heap in use %s -> %s, RSS %s -> %s; answer %s",
		events, took.Round(time.Millisecond), float64(events)/took.Seconds(),
		drillMiB(heap0), drillMiB(heap1), drillMiB(rss0), drillMiB(rss1), strings.TrimSpace(got[:min(len(got), 300)]))

	const heapBound, rssBound = 8 << 20, 32 << 20
	if heap1 > heap0+heapBound {
		t.Errorf("heap in use grew by %s over %d events, want under %s", drillMiB(heap1-heap0), events, drillMiB(heapBound))
	}
	if rss1 > rss0+rssBound {
		t.Errorf("RSS grew by %s over %d events, want under %s", drillMiB(rss1-rss0), events, drillMiB(rssBound))
	}

	status, body, _ := strings.Cut(got, " ")
	if status != "200" || len(body) > 256 {
		t.Fatalf("answer %.300s: want 200 and a summary of a few bytes", got)
	}
	var sum streamSummary
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if sum.Published != uint64(events) || sum.Delivered != 0 ||
		seqOf(t, sum.FirstID) != base+1 || seqOf(t, sum.LastID) != base+uint64(events) {
		t.Fatalf("summary %+v: want published %d, ids from seq %d to %d, delivered 0 (no subscriber)",
			sum, events, base+1, base+uint64(events))
	}
}
