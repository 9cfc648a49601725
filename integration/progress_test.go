package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// On HTTP/2 and HTTP/3 a subscriber is judged slow by progress, as on the
// HTTP/1.1 event loop: by how long its stream has taken no bytes, not by how
// long one flush lasted. These tests read streams through clients whose
// flow-control window is small (progressWindow), so the server can only
// write as fast as the test reads.

const (
	// progressWindow is the readers' flow-control window per stream: what
	// the server may send ahead of the reader.
	progressWindow = 16 << 10
	// progressRate is how fast a paced reader reads: a 64 KiB flush (the
	// most the stream gathers) takes about 200 ms, twice the hub's 100 ms
	// judgement, while the 16 KiB the server writes between two signs of
	// progress take about 50 ms, half of it.
	progressRate = 320 << 10 // bytes per second
	// progressBurst is the most a paced reader reads at once.
	progressBurst = 8 << 10
)

// progressClients are an HTTP/2 and an HTTP/3 client (quic-go's) trusting
// the test certificate, whose streams take at most progressWindow unread.
func progressClients(t *testing.T) []struct {
	name  string
	c     *http.Client
	major int
} {
	h2 := &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
		HTTP2:              &http.HTTP2Config{MaxReceiveBufferPerStream: progressWindow},
	}
	h3 := &http3.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		QUICConfig: &quic.Config{
			InitialStreamReceiveWindow: progressWindow,
			MaxStreamReceiveWindow:     progressWindow, // no auto-tuning past it
		},
	}
	t.Cleanup(func() { h2.CloseIdleConnections(); h3.Close() })
	return []struct {
		name  string
		c     *http.Client
		major int
	}{
		{"HTTP/2", &http.Client{Transport: h2}, 2},
		{"HTTP/3", &http.Client{Transport: h3}, 3},
	}
}

// progressSite serves TLS on {PORT} (HTTP/2 over TCP, HTTP/3 over UDP) with
// the sse options opts.
func progressSite(opts string) string {
	return `
https://127.0.0.1:{PORT} {
	tls {CERT} {KEY}
	sse /events {
		topic flood
		heartbeat off
` + opts + `
	}
	sse_publish /publish {
		overload_wait 20s
	}
}
`
}

// pacedReader reads an event stream at progressRate, collecting the ids of
// the events it has read whole, until it has want of them or the stream
// ends.
type pacedReader struct {
	opened chan struct{} // the opening arrived: the subscriber is registered
	done   chan struct{}
	bytes  atomic.Int64 // read so far
	ids    []string     // once done
	err    error        // why it ended early, once done
}

// subscribePaced opens the stream on c and reads it at progressRate on a
// goroutine of its own.
func subscribePaced(ctx context.Context, t *testing.T, c *http.Client, url string, major, want int) *pacedReader {
	t.Helper()
	resp := subscribeRaw(ctx, t, c, url, major)
	r := &pacedReader{opened: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer resp.Body.Close()
		r.err = r.read(resp.Body, want)
	}()
	select {
	case <-r.opened:
	case <-r.done:
		t.Fatalf("stream ended before its opening: %v", r.err)
	}
	return r
}

// subscribeRaw opens the stream on c and checks its status and protocol.
func subscribeRaw(ctx context.Context, t *testing.T, c *http.Client, url string, major int) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != major {
		resp.Body.Close()
		t.Fatalf("subscribe: %s over %s, want 200 over HTTP/%d", resp.Status, resp.Proto, major)
	}
	return resp
}

// read is a token bucket: every 10 ms it earns what progressRate allows
// for the time since the last tick, keeping at most progressBurst unspent,
// so a tick that comes late (a busy machine) is made up for, but a pause
// (nothing to read) is not followed by a burst.
func (r *pacedReader) read(body io.Reader, want int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var (
		last   = time.Now()
		credit float64 // bytes it may read now
		read   int64
		buf    = make([]byte, progressBurst)
		line   []byte // a line's start, read before its end
		id     string // the id of the event being read
	)
	for len(r.ids) < want {
		now := <-tick.C
		credit = min(credit+progressRate*now.Sub(last).Seconds(), progressBurst)
		last = now
		for credit >= 1 && len(r.ids) < want {
			n, err := body.Read(buf[:int(credit)])
			read += int64(n)
			r.bytes.Store(read)
			credit -= float64(n)
			for chunk := buf[:n]; len(chunk) > 0; {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					line = append(line, chunk...)
					break
				}
				line = append(line, chunk[:i]...)
				chunk = chunk[i+1:]
				switch v, isID := bytes.CutPrefix(line, []byte("id: ")); {
				case isID:
					id = string(v)
				case len(line) == 0 && id != "": // the event is whole
					r.ids = append(r.ids, id)
					id = ""
				case string(line) == ": caddy-sse":
					close(r.opened)
				}
				line = line[:0]
			}
			if err != nil {
				return fmt.Errorf("stream ended after %d bytes: %w", read, err)
			}
			if n == 0 {
				break
			}
		}
	}
	return nil
}

// progressPublish publishes events (each a topic and its data) as one JSON
// array and returns their ids and how long the publish took.
func progressPublish(t *testing.T, url string, datas []string) ([]publishResult, time.Duration) {
	t.Helper()
	events := make([]map[string]any, len(datas))
	for i, d := range datas {
		events[i] = map[string]any{"topic": "flood", "data": d}
	}
	body, _ := json.Marshal(events)
	start := time.Now()
	status, answer := post(t, h2Client, url, "application/json", bytes.NewReader(body))
	took := time.Since(start)
	mustStatus(t, "publish", status, http.StatusOK, answer)
	var res []publishResult
	if err := json.Unmarshal(answer, &res); err != nil || len(res) != len(datas) {
		t.Fatalf("publish answer %s: %v", answer, err)
	}
	return res, took
}

// checkIDs requires the reader to have every published id, in order.
func checkIDs(t *testing.T, r *pacedReader, published []string) {
	t.Helper()
	if r.err != nil || len(r.ids) != len(published) {
		t.Fatalf("the reader got %d of %d events: %v", len(r.ids), len(published), r.err)
	}
	for i, id := range published {
		if r.ids[i] != id {
			t.Fatalf("event %d is %s, want %s", i, r.ids[i], id)
		}
	}
}

// awaitReader waits for a paced reader to finish, bounded by a safety net.
func awaitReader(t *testing.T, r *pacedReader) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the reader has %d events after 60s", len(r.ids))
	}
}

// A subscriber that reads steadily but slowly (progressRate) while a
// publisher keeps its queue full is not dropped as slow: each 64 KiB flush
// to it lasts twice the hub's 100 ms, but the stream takes bytes all along.
// Publishers wait for it instead, and it gets every event, in order.
func TestProgressSlowReaderKeptWhileQueueFull(t *testing.T) {
	t.Parallel()
	forEachDeadlineKeeper(t, func(t *testing.T, global string) {
		c := startCaddyWith(t, global, progressSite("\t\tqueue 64"))
		base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
		const posts, perPost = 80, 8 // 640 events of 1 KiB
		payload := strings.Repeat("x", 1<<10)
		for _, tc := range progressClients(t) { // one after the other: they are timed
			t.Run(tc.name, func(t *testing.T) {
				dropped := c.stats(t, "default").DroppedSlow
				r := subscribePaced(testCtx(t), t, tc.c, base+"/events?topic=flood", tc.major, posts*perPost)
				var published []string
				var slowest time.Duration
				start := time.Now()
				for p := range posts {
					datas := make([]string, perPost)
					for i := range datas {
						datas[i] = fmt.Sprintf("%d-%d-%s", p, i, payload)
					}
					res, took := progressPublish(t, base+"/publish", datas)
					slowest = max(slowest, took)
					for _, pr := range res {
						published = append(published, pr.ID)
						if pr.Delivered != 1 {
							st := c.stats(t, "default")
							t.Fatalf("publish %d: delivered to %d subscribers: the reader was dropped after %d bytes in %v (dropped_slow %d)",
								p, pr.Delivered, r.bytes.Load(), time.Since(start).Round(time.Millisecond), st.DroppedSlow-dropped)
						}
					}
				}
				awaitReader(t, r)
				checkIDs(t, r, published)
				st := c.stats(t, "default")
				if st.DroppedSlow != dropped {
					t.Fatalf("dropped_slow went from %d to %d", dropped, st.DroppedSlow)
				}
				// The queue was full while a flush lasted longer than the
				// hub's judgement: publishers waited that long for room.
				if slowest < 100*time.Millisecond {
					t.Fatalf("the slowest publish took %v: the queue was never full for 100 ms, which tests nothing", slowest)
				}
				t.Logf("%d events (%d KiB) read at %d KiB/s in %v; publishers waited up to %v for room",
					len(r.ids), r.bytes.Load()>>10, progressRate>>10, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond))
			})
		}
	})
}

// An event larger than the write timeout lets through at the reader's pace
// (200 KiB at progressRate: about 640 ms against write_timeout 300ms) still
// reaches it: the timeout bounds each piece the stream takes, not the whole
// write. Before, the stream's own deadline (write_idle off) covered the
// whole write and dropped the reader.
func TestProgressLargeEventWithinWriteTimeout(t *testing.T) {
	t.Parallel()
	forEachDeadlineKeeper(t, func(t *testing.T, global string) {
		c := startCaddyWith(t, global, strings.Replace(progressSite("\t\twrite_timeout 300ms"),
			"overload_wait 20s", "overload_wait 20s\n\t\tmax_event 256KiB", 1))
		base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
		const events = 4
		payload := strings.Repeat("y", 200<<10)
		for _, tc := range progressClients(t) {
			t.Run(tc.name, func(t *testing.T) {
				r := subscribePaced(testCtx(t), t, tc.c, base+"/events?topic=flood", tc.major, events)
				var published []string
				start := time.Now()
				for i := range events {
					res, _ := progressPublish(t, base+"/publish", []string{fmt.Sprint(i, payload)})
					published = append(published, res[0].ID)
				}
				awaitReader(t, r)
				checkIDs(t, r, published)
				t.Logf("%d events of 200 KiB read at %d KiB/s in %v with write_timeout 300ms",
					events, progressRate>>10, time.Since(start).Round(time.Millisecond))
			})
		}
	})
}

// The converse: a subscriber that stops reading is still dropped as slow,
// by the hub once its queue is full (write_timeout is far longer), while
// publishers go on.
func TestProgressStoppedReaderDropped(t *testing.T) {
	t.Parallel()
	forEachDeadlineKeeper(t, func(t *testing.T, global string) {
		c := startCaddyWith(t, global, progressSite("\t\tqueue 64\n\t\twrite_timeout 60s"))
		base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
		payload := strings.Repeat("z", 1<<10)
		for _, tc := range progressClients(t) {
			t.Run(tc.name, func(t *testing.T) {
				dropped := c.stats(t, "default").DroppedSlow
				ctx, cancel := context.WithCancel(testCtx(t))
				defer cancel()
				resp := subscribeRaw(ctx, t, tc.c, base+"/events?topic=flood", tc.major)
				defer resp.Body.Close()
				opening := make([]byte, len(": caddy-sse\n\n"))
				if _, err := io.ReadFull(resp.Body, opening); err != nil || string(opening) != ": caddy-sse\n\n" {
					t.Fatalf("opening %q: %v", opening, err)
				}
				// From here on it reads nothing. Publish until a publish
				// no longer reaches it.
				start := time.Now()
				var slowest time.Duration
				for p := 0; ; p++ {
					if time.Since(start) > 10*time.Second {
						t.Fatalf("still subscribed 10s after it stopped reading (%d publishes)", p)
					}
					res, took := progressPublish(t, base+"/publish", []string{fmt.Sprint(p, payload)})
					slowest = max(slowest, took)
					if res[0].Delivered == 0 {
						break
					}
				}
				droppedAfter := time.Since(start)
				st := c.stats(t, "default")
				if st.DroppedSlow != dropped+1 {
					t.Fatalf("dropped_slow went from %d to %d, want one more", dropped, st.DroppedSlow)
				}
				t.Logf("dropped as slow %v after it stopped reading; the slowest publish waited %v",
					droppedAfter.Round(time.Millisecond), slowest.Round(time.Millisecond))
			})
		}
	})
}
