package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPublishBodyFormats(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	s := subscribe(t, client, c.base+"/events?topic=news&topic=chat").ready()
	pub := c.base + "/publish"

	// JSON array: one answer per event, in order.
	status, body := post(t, client, pub, "application/json",
		strings.NewReader(`[{"topic":"news","data":"a1"},{"topics":["news","chat"],"event":"x","data":{"k":[1, 2]}}]`))
	mustStatus(t, "json array", status, 200, body)
	var results []publishResult
	if err := json.Unmarshal(body, &results); err != nil || len(results) != 2 {
		t.Fatalf("json array answer %s: %v", body, err)
	}
	if ev := s.next(); ev.Data != "a1" || ev.LastEventID != results[0].ID {
		t.Errorf("got %+v", ev)
	}
	if ev := s.next(); ev.Data != `{"k":[1,2]}` || ev.Type != "x" || ev.LastEventID != results[1].ID {
		t.Errorf("non-string data must arrive as compact JSON; got %+v", ev)
	}

	form := url.Values{"topic": {"chat"}, "event": {"f"}, "data": {"from a form"}}
	status, body = post(t, client, pub, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	mustStatus(t, "form", status, 200, body)
	if ev := s.next(); ev.Data != "from a form" || ev.Type != "f" {
		t.Errorf("form: got %+v", ev)
	}

	status, body = post(t, client, pub+"?topic=news&event=t", "text/plain", strings.NewReader("from text\r\nsecond line"))
	mustStatus(t, "text/plain", status, 200, body)
	if ev := s.next(); ev.Data != "from text\nsecond line" || ev.Type != "t" {
		t.Errorf("text: got %+v", ev)
	}

	status, body = post(t, client, pub+"?topic=news", "", strings.NewReader("no content type"))
	mustStatus(t, "no content type", status, 200, body)
	if ev := s.next(); ev.Data != "no content type" {
		t.Errorf("untyped: got %+v", ev)
	}
}

// A held text/event-stream body publishes each event as soon as it is
// parsed: the subscriber receives the first before the second is written.
func TestStreamingPublishDeliversEachEventAtOnce(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	s := subscribe(t, client, c.base+"/events?topic=chat").ready()

	pr, pw := io.Pipe()
	type answer struct {
		status int
		body   []byte
	}
	done := make(chan answer, 1)
	go func() {
		status, body := post(t, client, c.base+"/publish?topic=chat", "text/event-stream", pr)
		done <- answer{status, body}
	}()
	var ids []string
	for i := 0; i < 5; i++ {
		fmt.Fprintf(pw, "event: token\nid: ignored\ndata: tok%d\n\n", i)
		ev := s.next()
		if ev.Data != fmt.Sprintf("tok%d", i) || ev.Type != "token" {
			t.Fatalf("event %d: got %+v", i, ev)
		}
		ids = append(ids, ev.LastEventID)
	}
	pw.Close()
	// The answer is a summary, not one result per event (docs/publishing.md).
	a := <-done
	mustStatus(t, "held stream", a.status, http.StatusOK, a.body)
	var sum map[string]any
	if err := json.Unmarshal(a.body, &sum); err != nil {
		t.Fatalf("stream answer %s: %v", a.body, err)
	}
	want := map[string]any{"published": 5.0, "first_id": ids[0], "last_id": ids[4], "delivered": 5.0}
	if fmt.Sprint(sum) != fmt.Sprint(want) {
		t.Fatalf("stream answer %s, want %v", a.body, want)
	}
}

func TestStreamingPublishStopsAtFirstBadEvent(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	body := "data: one\n\ndata: two\n\nevent: bad\ndata:\n\ndata: never\n\n"
	status, resp := post(t, client, c.base+"/publish?topic=chat", "text/event-stream", strings.NewReader(body))
	mustStatus(t, "stream with an empty event", status, http.StatusBadRequest, resp)
	var answer struct {
		Error     string `json:"error"`
		Field     string `json:"field"`
		Published int    `json:"published"`
		FirstID   string `json:"first_id"`
		LastID    string `json:"last_id"`
		Delivered *int   `json:"delivered"`
	}
	if err := json.Unmarshal(resp, &answer); err != nil || answer.Published != 2 || !strings.Contains(answer.Error, "2 events") {
		t.Fatalf("answer %s: want published 2 and a message saying so", resp)
	}
	// The summary of what was published before the bad event.
	if answer.Field != "data" || answer.FirstID == "" || answer.LastID == "" || answer.FirstID == answer.LastID ||
		answer.Delivered == nil || *answer.Delivered != 0 {
		t.Fatalf("answer %s: want field data, the first and last ids of the two events, delivered 0", resp)
	}
}

func TestBadPublishesAreRejectedWhole(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish {
		max_body  2KiB
		max_event 1KiB
	}
}
`)
	s := subscribe(t, client, c.base+"/events").ready()
	pub := c.base + "/publish"
	cases := []struct {
		name, ctype, body string
		status            int
		field             string
	}{
		{"malformed json", "application/json", `{"topic":`, 400, ""},
		{"null data", "application/json", `{"topic":"news","data":null}`, 400, "data"},
		{"empty data", "application/json", `{"topic":"news","data":""}`, 400, "data"},
		{"topic and topics", "application/json", `{"topic":"news","topics":["news"],"data":"x"}`, 400, "topics"},
		{"bad event name", "application/json", `{"topic":"news","event":"a\nb","data":"x"}`, 400, "event"},
		{"bad topic name", "application/json", `{"topic":"sp ace","data":"x"}`, 400, "topic"},
		{"invalid utf-8", "text/plain", "\xff\xfe", 400, "data"}, // posted with ?topic=news
		{"second of batch bad", "application/json", `[{"topic":"news","data":"first"},{"topic":"news"}]`, 400, "[1].data"},
		{"second of batch undeclared", "application/json", `[{"topic":"news","data":"first"},{"topic":"zzz","data":"x"}]`, 404, "[1].topic"},
		{"event too large", "application/json", `{"topic":"news","data":"` + strings.Repeat("x", 1500) + `"}`, 413, "data"},
		{"body too large", "application/json", `[` + strings.Repeat(`{"topic":"news","data":"x"},`, 100) + `{"topic":"news","data":"x"}]`, 413, ""},
		{"unsupported type", "application/xml", `<x/>`, 415, "Content-Type"},
	}
	for _, tc := range cases {
		status, body := post(t, client, pub+"?topic=news", tc.ctype, strings.NewReader(tc.body))
		if status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, status, tc.status, body)
			continue
		}
		var e struct{ Error, Field string }
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Field != tc.field {
			t.Errorf("%s: body %s, want a JSON error naming field %q", tc.name, body, tc.field)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, pub, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !json.Valid(body) {
		t.Errorf("GET on publish: %s Allow=%q body %s", resp.Status, resp.Header.Get("Allow"), body)
	}
	// Nothing of the rejected batches was published: the next event the
	// subscriber sees is this one.
	publishData(t, pub, "news", "marker")
	if ev := s.next(); ev.Data != "marker" {
		t.Fatalf("a rejected publish leaked through: %+v", ev)
	}
}

func TestPublishAuthorization(t *testing.T) {
	t.Setenv("SSE_IT_TOKEN", "s3cret-token")
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /open
	sse_publish /token {
		token {env.SSE_IT_TOKEN}
		token second-token
		allow_from none
	}
	sse_publish /elsewhere {
		allow_from 10.0.0.0/8 192.0.2.7
	}
}
`)
	ev := `{"topic":"news","data":"x"}`
	check := func(path string, want int, headers ...string) {
		t.Helper()
		status, body := post(t, client, c.base+path, "application/json", strings.NewReader(ev), headers...)
		if status != want || !json.Valid(body) {
			t.Errorf("%s %v: %d %s, want %d with a JSON body", path, headers, status, body, want)
		}
	}
	check("/open", 200)                                      // loopback allowed by default
	check("/open", 401, "Authorization: Bearer wrong")       // a wrong token is refused anywhere
	check("/open", 200, "Authorization: Basic dXNlcjpwYXNz") // another scheme is not ours to judge
	check("/token", 401)                                     // allow_from none: token required
	check("/token", 401, "Authorization: Bearer s3cret-tokeX")
	check("/token", 200, "Authorization: Bearer s3cret-token") // from the environment
	check("/token", 200, "Authorization: bearer second-token")
	check("/elsewhere", 403) // loopback is not in allow_from and no token exists
}

// Slow-dripping publishers are cut off by body_timeout (a whole body) and
// stream_idle_timeout (silence inside a held stream), while other
// publishers and subscribers are served meanwhile.
func TestSlowPublishersAreCutOff(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish {
		body_timeout 300ms
		stream_idle_timeout 300ms
	}
}
`)
	s := subscribe(t, client, c.base+"/events").ready()
	addr := strings.TrimPrefix(c.base, "http://")

	// Half a JSON body, then nothing.
	stalled := rawRequest(t, addr, "POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"topic\":")
	// One event of a held stream, then silence.
	held := rawRequest(t, addr, "POST /publish?topic=news HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"11\r\ndata: from-held\n\n\r\n")
	if ev := s.next(); ev.Data != "from-held" {
		t.Fatalf("got %+v, want the held stream's first event", ev)
	}
	publishData(t, c.base+"/publish", "news", "others still publish")
	if ev := s.next(); ev.Data != "others still publish" {
		t.Fatalf("got %+v", ev)
	}
	for name, conn := range map[string]*bufio.Reader{"partial body": stalled, "held stream": held} {
		status, err := conn.ReadString('\n')
		if err != nil || !strings.Contains(status, " 408 ") {
			t.Errorf("%s: answer %q (%v), want 408", name, status, err)
		}
	}
}

// rawRequest writes a hand-made request on a new connection and returns
// the reader of its answer; reads are bounded by the event wait.
func rawRequest(t *testing.T, addr, request string) *bufio.Reader {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(eventWait))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	return bufio.NewReader(conn)
}
