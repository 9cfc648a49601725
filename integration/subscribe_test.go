package integration

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const basicSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news chat
		topic rooms/* {
			replay 50
		}
		heartbeat 200ms
	}
	sse_publish /publish
}
`

func TestSubscribeReceivesPublishedEvents(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	s := subscribe(t, client, c.base+"/events?topic=news").ready()

	for header, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache, no-transform",
		"X-Accel-Buffering": "no",
	} {
		if got := s.resp.Header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}

	// HTTP/1.1 streams are taken over and end with their connection: a
	// client must not put that connection back in its pool.
	if !s.resp.Close {
		t.Errorf("an HTTP/1.1 stream must be sent with Connection: close")
	}

	res := publishJSON(t, c.base+"/publish", map[string]any{"topic": "news", "event": "update", "data": "line 1\nline 2"})
	if res.Delivered != 1 {
		t.Errorf("delivered = %d, want 1", res.Delivered)
	}
	ev := s.next()
	if ev.Type != "update" || ev.Data != "line 1\nline 2" || ev.LastEventID != res.ID {
		t.Fatalf("got %+v, want update/%q/%s", ev, "line 1\nline 2", res.ID)
	}
	// The default event type has no event: line.
	publishData(t, c.base+"/publish", "news", "plain")
	if ev := s.next(); ev.Type != "" || ev.Data != "plain" {
		t.Fatalf("got %+v, want a default-typed event", ev)
	}
	if st := c.stats(t, "default"); st.Subscribers != 1 || st.Published != 2 {
		t.Errorf("admin stats %+v, want 1 subscriber and 2 published", st)
	}
}

func TestHeartbeatOnIdleStream(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	s := subscribe(t, client, c.base+"/events?topic=news").ready()
	s.waitRaw("\n: heartbeat\n")
	s.waitRaw("\n: heartbeat\n\n: heartbeat\n") // and it keeps beating
}

func TestSeveralTopicsOnOneConnection(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	both := subscribe(t, client, c.base+"/events?topic=news&topic=rooms/kitchen").ready()
	all := subscribe(t, client, c.base+"/events").ready() // all literal topics: news and chat

	publishData(t, c.base+"/publish", "news", "n1")
	publishData(t, c.base+"/publish", "rooms/kitchen", "k1")
	publishData(t, c.base+"/publish", "chat", "c1")
	res := publishJSON(t, c.base+"/publish", map[string]any{"topics": []string{"news", "rooms/kitchen"}, "data": "both"})
	if res.Delivered != 2 { // "both" once, "all" once
		t.Errorf("delivered = %d, want 2 (each subscriber counts once)", res.Delivered)
	}
	publishData(t, c.base+"/publish", "news", "end")

	var got []string
	for ev := both.next(); ev.Data != "end"; ev = both.next() {
		got = append(got, ev.Data)
	}
	if want := []string{"n1", "k1", "both"}; !slices.Equal(got, want) {
		t.Errorf("news+rooms/kitchen subscriber got %q, want %q", got, want)
	}
	got = nil
	for ev := all.next(); ev.Data != "end"; ev = all.next() {
		got = append(got, ev.Data)
	}
	if want := []string{"n1", "c1", "both"}; !slices.Equal(got, want) {
		t.Errorf("default subscriber got %q, want %q", got, want)
	}
}

func TestHeadAnswersHeadersOnly(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	resp, err := client.Head(c.base + "/events?topic=news")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || len(body) != 0 {
		t.Fatalf("HEAD: %s %q body %q", resp.Status, resp.Header.Get("Content-Type"), body)
	}
}

func TestUndeclaredTopicIsNotFoundOnBothSides(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	for _, q := range []string{"topic=nope", "topic=news&topic=nope", "topic=rooms/a/b"} {
		resp, err := client.Get(c.base + "/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("subscribe ?%s: %s %q, want 404 text/plain", q, resp.Status, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(string(body), "not served") {
			t.Errorf("subscribe ?%s: body %q does not say why", q, body)
		}
	}
	status, body := post(t, client, c.base+"/publish", "application/json", strings.NewReader(`{"topic":"nope","data":"x"}`))
	mustStatus(t, "publish to an undeclared topic", status, http.StatusNotFound, body)
	if !strings.Contains(string(body), `"field":"topic"`) {
		t.Errorf("publish 404 body %s does not name the field", body)
	}
}

func TestMaxSubscribersAsksToComeBackLater(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
		max_subscribers 1
	}
	sse_publish /publish
}
`)
	first := subscribe(t, client, c.base+"/events").ready()
	second := subscribe(t, client, c.base+"/events")
	if second.resp.StatusCode != http.StatusOK {
		t.Fatalf("over the limit: status %s, want 200 (a 503 stops EventSource for good)", second.resp.Status)
	}
	second.waitEnd()
	raw := second.rawString()
	if !strings.Contains(raw, "retry: ") || !strings.Contains(raw, "too many subscribers") {
		t.Fatalf("over-limit stream %q lacks a retry field and a reason", raw)
	}
	publishData(t, c.base+"/publish", "news", "still served")
	if ev := first.next(); ev.Data != "still served" {
		t.Fatalf("first subscriber got %+v", ev)
	}
}
