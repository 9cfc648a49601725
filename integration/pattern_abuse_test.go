package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Anonymous subscribers churning on fresh names of a capped pattern, many
// times its max_topics, never make an idle room forget its history: a
// client resuming on it afterwards gets every event it missed, no reset.
func TestPatternChurnKeepsHistory(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic room/* {
			max_topics 20
		}
	}
	sse_publish /publish
}
`)
	pub := c.base + "/publish"
	first := publishData(t, pub, "room/important", "important-1")
	publishData(t, pub, "room/important", "important-2")
	publishData(t, pub, "room/important", "important-3")

	// Batches of 19 fresh rooms (the cap less room/important), each
	// opened, then closed, and the closes seen by the hub before the next
	// batch: 190 rooms through a cap of 20.
	name := 0
	for batch := 0; batch < 10; batch++ {
		var subs []*subscriber
		for i := 0; i < 19; i++ {
			name++
			subs = append(subs, subscribe(t, client, fmt.Sprintf("%s/events?topic=room/churn-%d", c.base, name)).ready())
		}
		for _, s := range subs {
			s.close()
		}
		drillWaitSubscribers(t, c, "default", 0, eventWait)
	}
	if st := c.stats(t, "default"); st.Topics > 20 {
		t.Fatalf("the hub holds %d topics, over max_topics 20", st.Topics)
	}

	s := subscribe(t, client, c.base+"/events?topic=room/important", "Last-Event-ID: "+first.ID).ready()
	for _, want := range []string{"important-2", "important-3"} {
		ev := s.next()
		if ev.Type == "reset" {
			t.Fatalf("resume on room/important after churn: reset %s (its history was forgotten)", ev.Data)
		}
		if ev.Data != want {
			t.Fatalf("resume on room/important: got %q, want %q", ev.Data, want)
		}
	}
}

// A declaration full of rooms that have subscribers: a subscriber of a new
// room is asked to come back later (200 and a retry, as EventSource wants),
// a publisher to a new room gets 429 naming the limit, and existing rooms
// carry on. Once the holder leaves, new rooms are served again.
func TestPatternCapHeldByOneConnection(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic room/* {
			max_topics 8
		}
		max_topics_per_subscriber 8
	}
	sse_publish /publish
}
`)
	c.waitLog("one subscriber may hold every topic of this pattern")
	pub := c.base + "/publish"
	q := ""
	for i := 0; i < 8; i++ {
		q += fmt.Sprintf("&topic=room/held-%d", i)
	}
	holder := subscribe(t, client, c.base+"/events?"+q[1:]).ready()

	late := subscribe(t, client, c.base+"/events?topic=room/new")
	if late.resp.StatusCode != http.StatusOK {
		t.Fatalf("subscriber of a new room with the cap held: status %s, want 200 (a 503 stops EventSource for good)", late.resp.Status)
	}
	late.waitEnd()
	if raw := late.rawString(); !strings.Contains(raw, "retry: ") || !strings.Contains(raw, "come back later") {
		t.Fatalf("refused subscriber's stream %q lacks a retry field and a reason", raw)
	}

	status, body := post(t, client, pub, "application/json", strings.NewReader(`{"topic":"room/new","data":"x"}`))
	mustStatus(t, "publish to a new room with the cap held", status, http.StatusTooManyRequests, body)
	if !strings.Contains(string(body), `room/*`) || !strings.Contains(string(body), "max_topics (8)") {
		t.Fatalf("429 body %s does not name the declaration and its max_topics", body)
	}
	publishData(t, pub, "room/held-3", "still served")
	if ev := holder.next(); ev.Data != "still served" {
		t.Fatalf("the holder got %+v", ev)
	}

	holder.close()
	drillWaitSubscribers(t, c, "default", 0, eventWait)
	subscribe(t, client, c.base+"/events?topic=room/new").ready()
}

// An event that names more new rooms than the cap can make room for is
// refused with 429 and changes nothing: no room is forgotten, none created,
// nothing published. An event naming more topics than max_topics_per_event
// is refused with 429 naming that limit.
func TestPatternRefusedPublishChangesNothing(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic room/* {
			max_topics 50
		}
	}
	sse_publish /publish
	sse_publish /publish-small {
		max_topics_per_event 10
	}
}
`)
	pub := c.base + "/publish"
	first := publishData(t, pub, "room/important", "important-1")
	publishData(t, pub, "room/important", "important-2")
	for i := 0; i < 40; i++ {
		publishData(t, pub, fmt.Sprintf("room/idle-%d", i), "x")
	}
	before := c.stats(t, "default")

	topics := func(prefix string, n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("%q", fmt.Sprintf("room/%s-%d", prefix, i))
		}
		return `{"topics":[` + strings.Join(names, ",") + `],"data":"refused"}`
	}
	status, body := post(t, client, pub, "application/json", strings.NewReader(topics("new", 60)))
	mustStatus(t, "an event naming 60 new rooms of a pattern capped at 50", status, http.StatusTooManyRequests, body)
	if !strings.Contains(string(body), "max_topics (50)") {
		t.Fatalf("429 body %s does not name max_topics (50)", body)
	}
	status, body = post(t, client, pub, "application/json", strings.NewReader(topics("many", 65)))
	mustStatus(t, "an event naming 65 topics (default max_topics_per_event 64)", status, http.StatusTooManyRequests, body)
	var perr struct{ Error, Field string }
	if err := json.Unmarshal(body, &perr); err != nil || !strings.Contains(perr.Error, "max_topics_per_event") || !strings.Contains(perr.Error, "64") || perr.Field != "topic" {
		t.Fatalf("429 body %s does not name max_topics_per_event 64 and the field", body)
	}
	status, body = post(t, client, c.base+"/publish-small", "application/json", strings.NewReader(topics("small", 11)))
	mustStatus(t, "an event naming 11 topics (max_topics_per_event 10)", status, http.StatusTooManyRequests, body)
	if !strings.Contains(string(body), "max_topics_per_event") || !strings.Contains(string(body), "10") {
		t.Fatalf("429 body %s does not name max_topics_per_event 10", body)
	}

	after := c.stats(t, "default")
	if after.Topics != before.Topics || after.Published != before.Published || after.LastID != before.LastID {
		t.Fatalf("refused publishes changed the hub: before %+v, after %+v", before, after)
	}
	s := subscribe(t, client, c.base+"/events?topic=room/important", "Last-Event-ID: "+first.ID).ready()
	if ev := s.next(); ev.Type == "reset" || ev.Data != "important-2" {
		t.Fatalf("resume on room/important after the refusals: got %s %q, want important-2 and no reset", ev.Type, ev.Data)
	}

	// Within the limits the same route publishes, forgetting the least
	// recently used idle rooms to make room: room/important was
	// published to first, but a subscriber holds it now.
	status, body = post(t, client, c.base+"/publish-small", "application/json", strings.NewReader(topics("small", 10)))
	mustStatus(t, "an event naming 10 new rooms", status, http.StatusOK, body)
	publishData(t, pub, "room/important", "important-3")
	if ev := s.next(); ev.Data != "important-3" {
		t.Fatalf("room/important's subscriber got %q", ev.Data)
	}
}
