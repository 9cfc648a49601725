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
	"sync"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// eventWait is the safety net for awaiting one event; tests never sleep.
const eventWait = 10 * time.Second

// client never decompresses on its own, so a test sees what Caddy sent.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}

// h2Client speaks HTTP/2 over TLS to Caddy's internal certificates.
var h2Client = &http.Client{Transport: &http.Transport{
	TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
	ForceAttemptHTTP2:  true,
	DisableCompression: true,
}}

// subscriber is one open event stream, decoded with go-sse's WHATWG parser
// (not our own), with the raw bytes kept for comments and fields that the
// parser does not surface.
type subscriber struct {
	t      *testing.T
	resp   *http.Response
	events chan sse.Event
	cancel context.CancelFunc
	closed chan struct{} // the stream ended

	mu    sync.Mutex
	raw   bytes.Buffer
	grown chan struct{} // closed and replaced whenever raw grows
}

// subscribe opens url (with optional headers, as "Key: value" strings) on
// c and waits for the response headers. It does not check the status.
func subscribe(t *testing.T, c *http.Client, url string, headers ...string) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		if k, v, ok := strings.Cut(h, ":"); ok {
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("subscribe %s: %v", url, err)
	}
	s := &subscriber{t: t, resp: resp, events: make(chan sse.Event, 4096), cancel: cancel,
		closed: make(chan struct{}), grown: make(chan struct{})}
	t.Cleanup(s.close)
	go s.read()
	return s
}

func (s *subscriber) read() {
	defer close(s.closed)
	defer close(s.events)
	body := io.TeeReader(s.resp.Body, rawRecorder{s})
	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: 4 << 20}) {
		if err != nil {
			return
		}
		s.events <- ev
	}
}

type rawRecorder struct{ s *subscriber }

func (r rawRecorder) Write(b []byte) (int, error) {
	r.s.mu.Lock()
	r.s.raw.Write(b)
	close(r.s.grown)
	r.s.grown = make(chan struct{})
	r.s.mu.Unlock()
	return len(b), nil
}

func (s *subscriber) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next event, failing the test if none arrives in time or
// the stream ends.
func (s *subscriber) next() sse.Event {
	s.t.Helper()
	ev, err := s.nextOrErr()
	if err != nil {
		s.t.Fatal(err)
	}
	return ev
}

// nextOrErr is next for a goroutine other than the test's: it returns the
// failure instead of calling t.Fatal, which must run on the test's own
// goroutine.
func (s *subscriber) nextOrErr() (sse.Event, error) {
	select {
	case ev, ok := <-s.events:
		if !ok {
			return sse.Event{}, fmt.Errorf("stream ended while an event was awaited; raw so far:\n%s", s.rawString())
		}
		return ev, nil
	case <-time.After(eventWait):
		return sse.Event{}, fmt.Errorf("no event within %v; raw so far:\n%s", eventWait, s.rawString())
	}
}

// waitRaw waits until the raw stream contains substr.
func (s *subscriber) waitRaw(substr string) {
	s.t.Helper()
	s.awaitRaw(fmt.Sprintf("%q", substr), func(raw string) bool { return strings.Contains(raw, substr) })
}

// awaitRaw waits until cond holds for the raw stream read so far; it fails
// when the stream ends or eventWait passes first. what names the awaited
// thing in the failure.
func (s *subscriber) awaitRaw(what string, cond func(raw string) bool) {
	s.t.Helper()
	deadline := time.After(eventWait)
	for {
		s.mu.Lock()
		found := cond(s.raw.String())
		grown := s.grown
		s.mu.Unlock()
		if found {
			return
		}
		select {
		case <-grown:
		case <-s.closed:
			if !cond(s.rawString()) {
				s.t.Fatalf("stream ended without %s; raw:\n%s", what, s.rawString())
			}
			return
		case <-deadline:
			s.t.Fatalf("no %s within %v; raw:\n%s", what, eventWait, s.rawString())
		}
	}
}

// waitEnd waits for the server to close the stream, returning the events
// still unread.
func (s *subscriber) waitEnd() []sse.Event {
	s.t.Helper()
	var rest []sse.Event
	deadline := time.After(eventWait)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return rest
			}
			rest = append(rest, ev)
		case <-deadline:
			s.t.Fatalf("stream not closed by the server within %v", eventWait)
		}
	}
}

func (s *subscriber) rawString() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// ready waits for the opening comment: from then on the subscriber is
// registered and receives every event published.
func (s *subscriber) ready() *subscriber {
	s.t.Helper()
	if s.resp.StatusCode != http.StatusOK {
		s.t.Fatalf("subscribe: status %s", s.resp.Status)
	}
	s.waitRaw(": caddy-sse\n")
	return s
}

// publishResult is the publish API's answer for one event.
type publishResult struct {
	ID        string `json:"id"`
	Delivered int    `json:"delivered"`
}

// newPost builds a POST of body with headers ("Key: value") added, not
// set, so a test may send a header twice.
func newPost(t *testing.T, url, contentType, body string, headers ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return req
}

// post sends a publish request and returns status and body.
func post(t *testing.T, c *http.Client, url, contentType string, body io.Reader, headers ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// publishJSON publishes one event object and returns its result, failing
// the test on any status but 200.
func publishJSON(t *testing.T, url string, event map[string]any) publishResult {
	t.Helper()
	b, _ := json.Marshal(event)
	status, body := post(t, client, url, "application/json", bytes.NewReader(b))
	if status != http.StatusOK {
		t.Fatalf("publish %s: %d %s", b, status, body)
	}
	var res publishResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("publish answer %s: %v", body, err)
	}
	return res
}

func publishData(t *testing.T, url, topic, data string) publishResult {
	t.Helper()
	return publishJSON(t, url, map[string]any{"topic": topic, "data": data})
}

func mustStatus(t *testing.T, what string, got, want int, body []byte) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d; body: %s", what, got, want, body)
	}
}

func seqData(i int) string { return fmt.Sprintf("event-%04d", i) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func itoa(i int) string { return fmt.Sprint(i) }
