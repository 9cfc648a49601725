package integration

// Idempotency-Key through real Caddy processes: a retried publish is
// answered with the original result and publishes nothing, in memory and
// with Redis (on the same instance, on another, and after a 504).

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	sse "github.com/tmaxmax/go-sse"
)

// keyedPost publishes a JSON body with headers; it returns the status,
// the Idempotent-Replayed header and the body.
func keyedPost(t *testing.T, url, body string, headers ...string) (int, string, []byte) {
	t.Helper()
	status, replayed, b, err := tryKeyedPost(t, url, body, headers...)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return status, replayed, b
}

func tryKeyedPost(t *testing.T, url, body string, headers ...string) (int, string, []byte, error) {
	t.Helper()
	resp, err := redisPublishClient.Do(newPost(t, url, "application/json", body, headers...))
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), b, nil
}

// eventsUntil publishes a sentinel through url and returns the events s
// got before it.
func eventsUntil(t *testing.T, s *subscriber, url, topic string) []sse.Event {
	t.Helper()
	publishData(t, url, topic, "sentinel")
	return collectUntil(s, "sentinel")
}

func errorField(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e.Error, e.Field
}

const idemSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish
}
`

func TestIdempotencyMemory(t *testing.T) {
	c := startCaddy(t, idemSite)
	url := c.base + "/publish"
	s := subscribe(t, client, c.base+"/events?topic=news").ready()

	body := `[{"topic":"news","data":"one"},{"topic":"news","data":"two"}]`
	status, replayed, first := keyedPost(t, url, body, "Idempotency-Key: order-1")
	mustStatus(t, "first publish", status, http.StatusOK, first)
	if replayed != "" {
		t.Fatalf("first publish has Idempotent-Replayed: %q", replayed)
	}
	status, replayed, again := keyedPost(t, url, body, "Idempotency-Key: order-1")
	mustStatus(t, "retry", status, http.StatusOK, again)
	if replayed != "true" || !bytes.Equal(again, first) {
		t.Fatalf("retry: Idempotent-Replayed %q, body %s; want true and the original %s", replayed, again, first)
	}
	if got := eventsUntil(t, s, url, "news"); len(got) != 2 {
		t.Fatalf("subscriber got %d events before the sentinel, want 2 (the retry published again?)", len(got))
	}

	// The same key with another body: 422, nothing published.
	status, _, b := keyedPost(t, url, `{"topic":"news","data":"other"}`, "Idempotency-Key: order-1")
	mustStatus(t, "same key, other body", status, http.StatusUnprocessableEntity, b)
	if _, field := errorField(t, b); field != "Idempotency-Key" {
		t.Fatalf("422 names field %q: %s", field, b)
	}

	// Bad keys and a held stream with a key: 400 naming the header.
	for name, hdrs := range map[string][]string{
		"too long":  {"Idempotency-Key: " + strings.Repeat("k", 129)},
		"not ASCII": {"Idempotency-Key: caf\u00e9"},
		"twice":     {"Idempotency-Key: a", "Idempotency-Key: b"},
	} {
		status, _, b := keyedPost(t, url, `{"topic":"news","data":"bad"}`, hdrs...)
		mustStatus(t, name, status, http.StatusBadRequest, b)
		if msg, field := errorField(t, b); field != "Idempotency-Key" || !strings.Contains(msg, "Idempotency-Key") {
			t.Fatalf("%s: error %q field %q", name, msg, field)
		}
	}
	st, b := post(t, client, url+"?topic=news", "text/event-stream", stringsReader("data: x\n\n"), "Idempotency-Key: s-1")
	mustStatus(t, "held stream with a key", st, http.StatusBadRequest, b)

	// Concurrent duplicates publish once; every one gets the same answer.
	const n = 8
	answers := make([][]byte, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, answers[i] = keyedPost(t, url, `{"topic":"news","data":"together"}`, "Idempotency-Key: burst")
		}()
	}
	wg.Wait()
	for i := range answers {
		mustStatus(t, "concurrent duplicate", statuses[i], http.StatusOK, answers[i])
		if !bytes.Equal(answers[i], answers[0]) {
			t.Fatalf("concurrent duplicates answered %s and %s", answers[0], answers[i])
		}
	}
	if got := eventsUntil(t, s, url, "news"); len(got) != 1 || got[0].Data != "together" {
		t.Fatalf("concurrent duplicates published %d events, want 1", len(got))
	}
}

func TestIdempotencyRedisAcrossInstances(t *testing.T) {
	_, _, a, b := twoInstances(t, false)
	sa := subscribe(t, client, a.base+"/events?topic=news").ready()
	sb := subscribe(t, client, b.base+"/events?topic=news").ready()

	body := `{"topic":"news","data":"once"}`
	status, _, first := keyedPost(t, a.base+"/publish", body, "Idempotency-Key: pay-7")
	mustStatus(t, "first publish", status, http.StatusOK, first)
	for name, c := range map[string]*caddyProc{"same instance": a, "other instance": b} {
		status, replayed, again := keyedPost(t, c.base+"/publish", body, "Idempotency-Key: pay-7")
		mustStatus(t, name, status, http.StatusOK, again)
		if replayed != "true" || !bytes.Equal(again, first) {
			t.Fatalf("%s: Idempotent-Replayed %q, body %s; want true and %s", name, replayed, again, first)
		}
	}
	status, _, conflict := keyedPost(t, b.base+"/publish", `{"topic":"news","data":"changed"}`, "Idempotency-Key: pay-7")
	mustStatus(t, "same key, other body, other instance", status, http.StatusUnprocessableEntity, conflict)
	for name, s := range map[string]*subscriber{"a": sa, "b": sb} {
		if got := eventsUntil(t, s, a.base+"/publish", "news"); len(got) != 1 || got[0].Data != "once" {
			t.Fatalf("subscriber on %s got %d events, want the one", name, len(got))
		}
	}
}

// TestIdempotencyRetryAfter504: Redis hangs while a publish is in flight:
// 504 with "outcome":"unknown". The publish did happen once Redis runs
// again; the retry with its key gets the original id and publishes nothing.
func TestIdempotencyRetryAfter504(t *testing.T) {
	r, _, a, b := twoInstances(t, false)
	s := subscribe(t, client, b.base+"/events?topic=news").ready()
	publishData(t, a.base+"/publish", "news", "warm") // a pooled connection to Redis
	if ev := s.next(); ev.Data != "warm" {
		t.Fatalf("got %q", ev.Data)
	}

	body := `{"topic":"news","data":"maybe"}`
	r.Pause()
	status, _, got := keyedPost(t, a.base+"/publish", body, "Idempotency-Key: job-504")
	r.Resume()
	mustStatus(t, "publish to a hung Redis", status, http.StatusGatewayTimeout, got)
	var e struct {
		Error   string `json:"error"`
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(got, &e); err != nil || e.Outcome != "unknown" || e.Error == "" {
		t.Fatalf("504 body %s: want a JSON error with \"outcome\":\"unknown\"", got)
	}
	if strings.Contains(e.Error, "127.0.0.1") || strings.Contains(e.Error, r.Addr) {
		t.Fatalf("504 body names Redis's address: %s", got)
	}
	ev := s.next() // it was published after all, once Redis ran
	if ev.Data != "maybe" {
		t.Fatalf("subscriber got %q, want the timed-out publish", ev.Data)
	}
	// While Redis hung, an instance whose health ping timed out marked it
	// unreachable and answers 503 (Retry-After: 1) until it reconnects; a
	// publisher retries then, as this one does once the instance is back.
	redisWaitConnected(t, a, "default", true)
	var replayed string
	var again []byte
	for attempt := 0; attempt < 5; attempt++ {
		redisWaitConnected(t, b, "default", true)
		if status, replayed, again = keyedPost(t, b.base+"/publish", body, "Idempotency-Key: job-504"); status != http.StatusServiceUnavailable {
			break
		}
	}
	mustStatus(t, "retry after 504", status, http.StatusOK, again)
	var res publishResult
	if err := json.Unmarshal(again, &res); err != nil || replayed != "true" || res.ID != ev.LastEventID {
		t.Fatalf("retry after 504: Idempotent-Replayed %q, body %s; want the id %s that subscribers got", replayed, again, ev.LastEventID)
	}
	if got := eventsUntil(t, s, a.base+"/publish", "news"); len(got) != 0 {
		t.Fatalf("the retry published again: %d more events", len(got))
	}
}

// TestIdempotencySettingsApplyOnReload: idempotency_keys bounds the keys a
// hub remembers, and a reload applies a new bound to the same hub.
func TestIdempotencySettingsApplyOnReload(t *testing.T) {
	c := startCaddyWith(t, "sse {\n\t\tidempotency_keys 1\n\t}", idemSite)
	url := c.base + "/publish"
	replays := func(keys ...string) []string {
		var out []string
		for _, k := range keys {
			// Right after a reload a connection may be reset before the
			// request reached the hub (docs/operations.md): retried.
			var status int
			var replayed string
			var b []byte
			var err error
			for try := 0; try < 5; try++ {
				if status, replayed, b, err = tryKeyedPost(t, url, `{"topic":"news","data":"`+k+`"}`, "Idempotency-Key: "+k); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("publish %s: %v", k, err)
			}
			mustStatus(t, "publish "+k, status, http.StatusOK, b)
			out = append(out, replayed)
		}
		return out
	}
	// One key kept: b pushes a out, so a publishes again.
	if got := replays("a", "b", "a"); strings.Join(got, ",") != ",," {
		t.Fatalf("with idempotency_keys 1: Idempotent-Replayed %q, want none", got)
	}
	c.global = "sse {\n\t\tidempotency_keys 3\n\t}"
	c.reload(idemSite)
	redisPublishClient.CloseIdleConnections() // the old server closes them
	if got := replays("c", "d", "c"); strings.Join(got, ",") != ",,true" {
		t.Fatalf("after a reload to idempotency_keys 3: Idempotent-Replayed %q, want c replayed", got)
	}
}
