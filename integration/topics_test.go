package integration

import (
	"net/http"
	"testing"
)

// A placeholder topic is resolved per subscriber, who gets exactly that
// topic; publishers address it like a '*' segment.
func TestPlaceholderTopicIsPerSubscriber(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic user/{http.request.header.X-User}
		topic news
	}
	sse_publish /publish
}
`)
	alice := subscribe(t, client, c.base+"/events", "X-User: alice").ready()
	bob := subscribe(t, client, c.base+"/events?topic=user/bob", "X-User: bob").ready()

	publishData(t, c.base+"/publish", "user/bob", "for bob")
	publishData(t, c.base+"/publish", "user/alice", "for alice")
	publishData(t, c.base+"/publish", "news", "for all")
	if ev := alice.next(); ev.Data != "for alice" {
		t.Fatalf("alice got %+v first", ev)
	}
	if ev := alice.next(); ev.Data != "for all" {
		t.Fatalf("alice got %+v, want the news event", ev)
	}
	if ev := bob.next(); ev.Data != "for bob" {
		t.Fatalf("bob got %+v", ev)
	}

	for _, tc := range []struct {
		name, query, header string
		want                int
	}{
		{"no identity", "", "", http.StatusForbidden},
		{"another user's topic", "?topic=user/bob", "X-User: alice", http.StatusNotFound},
		{"identity with a slash", "", "X-User: a/b", http.StatusForbidden},
	} {
		s := subscribe(t, client, c.base+"/events"+tc.query, tc.header)
		if s.resp.StatusCode != tc.want {
			t.Errorf("%s: status %s, want %d", tc.name, s.resp.Status, tc.want)
		}
		s.close()
	}
}

// The write deadline is cleared after every flush: over HTTP/2 a deadline
// left armed would reset the idle stream. Heartbeats spaced wider than the
// write timeout must keep coming, and events after them still arrive.
func TestWriteDeadlineDoesNotKillIdleHTTP2Stream(t *testing.T) {
	t.Parallel()
	forEachDeadlineKeeper(t, testIdleHTTP2Stream)
}

func testIdleHTTP2Stream(t *testing.T, global string) {
	c := startCaddyWith(t, global, `
https://127.0.0.1:{PORT} {
	tls {CERT} {KEY}
	sse /events {
		topic news
		heartbeat 400ms
		write_timeout 100ms
	}
	sse_publish /publish
}
`)
	base := "https://127.0.0.1:" + itoa(c.port)
	s := subscribe(t, h2Client, base+"/events").ready()
	if s.resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", s.resp.Proto)
	}
	s.waitRaw(": heartbeat\n\n: heartbeat\n\n: heartbeat\n\n")
	status, body := post(t, h2Client, base+"/publish?topic=news", "text/plain", stringsReader("after idling"))
	mustStatus(t, "publish", status, 200, body)
	if ev := s.next(); ev.Data != "after idling" {
		t.Fatalf("got %+v", ev)
	}
}
