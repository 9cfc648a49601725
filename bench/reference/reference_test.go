//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// safety bounds every wait of these tests; none is reached when they pass.
const safety = 20 * time.Second

// client's timeout covers a whole response, a stream's body included: a
// test that waits for an event that never comes fails instead of hanging.
var client = &http.Client{Timeout: safety}

// startServer runs the reference on a random loopback port with two loops
// (so events cross from the loop that read them to the other), and
// returns its base URL and the subscribers it closes, with why.
func startServer(t *testing.T, cfg config) (string, <-chan string) {
	t.Helper()
	closed := make(chan string, 64)
	cfg.listen = "127.0.0.1:0"
	cfg.loops = 2
	if cfg.maxPending == 0 {
		cfg.maxPending = 1 << 20
	}
	if cfg.stall == 0 {
		cfg.stall = safety
	}
	cfg.onClose = func(reason string) { closed <- reason }
	srv, err := start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.close)
	return "http://" + srv.addr, closed
}

type sseEvent struct {
	id         uint64
	name, data string
}

// subscribe opens a stream; once it returns, the server has registered it.
func subscribe(t *testing.T, base, topic string) (*bufio.Reader, io.Closer) {
	t.Helper()
	resp, err := client.Get(base + "/events?topic=" + topic)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("subscribe: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return bufio.NewReader(resp.Body), resp.Body
}

// nextEvent reads one event; comments (heartbeats) are skipped.
func nextEvent(t *testing.T, r *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (event so far %+v)", err, ev)
		}
		line = strings.TrimSuffix(line, "\n")
		name, value, _ := strings.Cut(line, ": ")
		switch {
		case line == "" && data != nil:
			ev.data = strings.Join(data, "\n")
			return ev
		case name == "id":
			if ev.id, err = strconv.ParseUint(value, 10, 64); err != nil {
				t.Fatalf("id line %q", line)
			}
		case name == "event":
			ev.name = value
		case name == "data":
			data = append(data, value)
		}
	}
}

func publish(t *testing.T, base, topic, data string) uint64 {
	t.Helper()
	resp, err := client.Post(base+"/publish?topic="+topic, "text/plain", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("publish: %s, %v", resp.Status, err)
	}
	id, err := strconv.ParseUint(out.ID, 10, 64)
	if err != nil {
		t.Fatalf("publish answered id %q", out.ID)
	}
	return id
}

// Every subscriber of a topic, whichever loop holds it, gets every event
// published to the topic once, in order, with the id the publisher was
// answered; other topics' events do not reach it. With coalescing, events
// published within the window go out together, in the same order.
func TestSubscribersGetEventsInOrderWithIDs(t *testing.T) {
	for _, coalesce := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run(fmt.Sprint("coalesce ", coalesce), func(t *testing.T) {
			inOrderWithIDs(t, coalesce)
		})
	}
}

func inOrderWithIDs(t *testing.T, coalesce time.Duration) {
	base, _ := startServer(t, config{coalesce: coalesce})
	type stream struct {
		r *bufio.Reader
		c io.Closer
	}
	var subs []stream
	for range 6 {
		r, c := subscribe(t, base, "news")
		defer c.Close()
		subs = append(subs, stream{r, c})
	}
	var want []sseEvent
	for i := range 50 {
		data := fmt.Sprintf("event %d", i)
		if i == 7 {
			data = "two\nlines"
		}
		want = append(want, sseEvent{id: publish(t, base, "news", data), data: data})
		publish(t, base, "other", "not for news")
	}
	for i, s := range subs {
		var last uint64
		for _, w := range want {
			got := nextEvent(t, s.r)
			if got != w {
				t.Fatalf("subscriber %d: got %+v, want %+v", i, got, w)
			}
			if got.id <= last {
				t.Fatalf("subscriber %d: id %d after %d", i, got.id, last)
			}
			last = got.id
		}
	}
}

// A held text/event-stream body is published event by event as it
// arrives, not when it ends; the answer sums it up.
func TestHeldStreamPublishesAsItArrives(t *testing.T) {
	base, _ := startServer(t, config{})
	r, c := subscribe(t, base, "live")
	defer c.Close()
	body, w := io.Pipe()
	answer := make(chan string, 1)
	go func() {
		resp, err := client.Post(base+"/publish?topic=live", "text/event-stream", body)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- resp.Status + " " + string(b)
	}()
	var first uint64
	for i := range 3 {
		// Split mid-line, so the parser meets lines across reads.
		fmt.Fprintf(w, "event: tick\nda")
		fmt.Fprintf(w, "ta: %d\n\n", i)
		got := nextEvent(t, r) // arrives while the body is still open
		if got.name != "tick" || got.data != strconv.Itoa(i) {
			t.Fatalf("got %+v, want event tick with data %d", got, i)
		}
		if i == 0 {
			first = got.id
		}
	}
	w.Close()
	want := fmt.Sprintf(`200 OK {"published":3,"first_id":"%d","last_id":"%d"}`+"\n", first, first+2)
	if got := <-answer; got != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
}

// A subscriber that stops reading falls behind; publishers then wait
// rather than let its pending bytes grow to -max-pending, and once it has
// been behind for -stall it is closed, publishing resumes, and the
// subscriber that reads gets every event. Without the pause it would be
// closed for its pending bytes instead; without the stall limit the
// publisher would wait forever.
func TestStalledSubscriberIsClosedAndPublishingResumes(t *testing.T) {
	// Publishers pause once the subscriber is behind past a quarter of
	// max-pending (1 MiB); the bound leaves room for 192 more events of
	// 16 KiB on their way meanwhile. With room for 11 (max-pending 256
	// KiB), the bound closed it first on a machine busy enough that the
	// pause came late (a CPU hog beside the suite).
	base, closed := startServer(t, config{maxPending: 4 << 20, stall: 300 * time.Millisecond})
	reader, c := subscribe(t, base, "big")
	defer c.Close()

	// The stalled subscriber: a small receive buffer, and it never reads.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	stalled, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /events?topic=big HTTP/1.1\r\nHost: x\r\n\r\n")
	head := make([]byte, len(sseHeaders))
	if _, err := io.ReadFull(stalled, head); err != nil || string(head) != string(sseHeaders) {
		t.Fatalf("stalled subscriber's answer %q, %v", head, err)
	}

	// Far more than the kernel buffers between the server and the stalled
	// subscriber hold.
	const events, size = 512, 16 << 10
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		for i := range events {
			data := fmt.Sprintf("%d %s", i, strings.Repeat("x", size))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/publish?topic=big", strings.NewReader(data))
			resp, err := client.Do(req)
			if err != nil {
				published <- err
				return
			}
			resp.Body.Close()
		}
		published <- nil
	}()
	for i := range events {
		got := nextEvent(t, reader)
		if n, _, _ := strings.Cut(got.data, " "); n != strconv.Itoa(i) {
			t.Fatalf("event %d: got data starting %q", i, n)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	select {
	case why := <-closed:
		if why != "stalled" {
			t.Fatalf("the subscriber was closed as %q, want as stalled", why)
		}
	case <-time.After(safety):
		t.Fatal("the stalled subscriber was not closed")
	}
}

// A subscriber that goes away is noticed and forgotten; the others go on.
func TestClosedSubscriberIsForgotten(t *testing.T) {
	base, closed := startServer(t, config{})
	_, gone := subscribe(t, base, "t")
	r, c := subscribe(t, base, "t")
	defer c.Close()
	gone.Close()
	select {
	case why := <-closed:
		if why != "closed by peer" && why != "reset" {
			t.Fatalf("closed as %q", why)
		}
	case <-time.After(safety):
		t.Fatal("the server did not notice the subscriber leave")
	}
	id := publish(t, base, "t", "still here")
	if got := nextEvent(t, r); got.id != id || got.data != "still here" {
		t.Fatalf("got %+v", got)
	}
}

// Wrong requests get an error and a closed connection.
func TestWrongRequests(t *testing.T) {
	base, _ := startServer(t, config{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nowhere?topic=a", 404},
		{"POST", "/events?topic=a", 405},
		{"GET", "/publish?topic=a", 405},
		{"GET", "/events", 400},
		{"POST", "/publish?topic=", 400},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || !resp.Close {
			t.Errorf("%s %s: %s (close %v), want %d and close", tc.method, tc.path, resp.Status, resp.Close, tc.status)
		}
	}
}

// Chunked framing and event lines are parsed the same whichever way the
// bytes are split across reads.
func TestChunkedEventStreamAcrossReads(t *testing.T) {
	// Chunks that end mid-line and mid-field, one with an extension.
	var body string
	for i, chunk := range []string{"data: a", "\n\r\ndat", "a: b\nevent: e\ndata: c\r", "\n\n", "id: 9\n: note\ndata:d\n\n"} {
		ext := ""
		if i == 1 {
			ext = ";ext=1"
		}
		body += fmt.Sprintf("%x%s\r\n%s\r\n", len(chunk), ext, chunk)
	}
	body += "0\r\nTrailer: x\r\n\r\n"
	want := []string{"|a", "e|b\nc", "|d"}
	for split := 1; split <= len(body); split++ {
		var r bodyReader
		r.chunked = true
		var p eventParser
		var got []string
		sink := func(b []byte) *httpError {
			return p.feed(b, func(event, data []byte) { got = append(got, string(event)+"|"+string(data)) })
		}
		done := false
		for rest := body; len(rest) > 0 && !done; {
			piece := rest[:min(split, len(rest))]
			n, end, err := r.read([]byte(piece), sink)
			if err != nil {
				t.Fatalf("split %d: %s", split, err.msg)
			}
			rest, done = rest[n:], end
		}
		if !done || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("split %d: done %v, events %q, want %q", split, done, got, want)
		}
	}
}

// With -chunked the stream is framed as caddy-sse's HTTP/1.1 streams are:
// net/http's own client reads it as a chunked body, event by event.
func TestChunkedStreamIsReadAsChunkedBody(t *testing.T) {
	base, _ := startServer(t, config{chunked: true})
	req, _ := http.NewRequest(http.MethodGet, base+"/events?topic=c", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("transfer encoding %q, want chunked", resp.TransferEncoding)
	}
	r := bufio.NewReader(resp.Body) // net/http undoes the chunking
	for i := range 3 {
		id := publish(t, base, "c", fmt.Sprintf("event %d", i))
		got := nextEvent(t, r)
		if got.data != fmt.Sprintf("event %d", i) || got.id != id {
			t.Fatalf("event %d through the chunked body: %+v (published as id %d)", i, got, id)
		}
	}
}
