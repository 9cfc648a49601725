package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Publishing on sse_mercure as the spec says, on a real Caddy, on one
// memory hub and on two instances sharing Redis: the 400s and 413s, the
// reserved namespace after WHATWG resolution, reused ids and resuming by
// them, the Mercure-Last-Event-ID answer, and hole 6 (a scoped publisher
// can no longer tell from the answer whether another's private update
// bears an id).
//
// The hubs run in compatibility mode with 0.x tokens (the "mercure"
// claim): what is tested here is the same in both modes, and those tokens
// are accepted in that mode whatever the token rules of modern mode.

const mercurePublishSite = `:{PORT} {
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		protocol_version_compatibility 8
		heartbeat 200ms
	}
	sse_mercure /small {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		protocol_version_compatibility 8
		hub small
		max_topics 3
		max_topic_length 64
		replay 3
	}
}
`

// mercurePublishHubs is one Mercure hub as a test sees it: where to
// publish and where to subscribe (the same instance on memory, two
// instances on Redis).
type mercurePublishHubs struct {
	pub, sub string // base URLs
}

func forMercurePublishHubs(t *testing.T, test func(t *testing.T, h mercurePublishHubs)) {
	t.Run("memory", func(t *testing.T) {
		c := startCaddy(t, mercurePublishSite)
		test(t, mercurePublishHubs{pub: c.base, sub: c.base})
	})
	t.Run("redis", func(t *testing.T) {
		_, _, a, b := twoInstancesOf(t, false, mercurePublishSite)
		redisWaitConnected(t, a, "small", true)
		redisWaitConnected(t, b, "small", true)
		test(t, mercurePublishHubs{pub: a.base, sub: b.base})
	})
}

// mercurePublisher is a 0.x publisher token allowed the given selectors.
func mercurePublisher(t *testing.T, selectors ...string) string {
	return mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": selectors}})
}

func mercureSubscriber(t *testing.T, selectors ...string) string {
	return mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{"subscribe": selectors}})
}

// publishAnswer is everything a publisher learns from a publish.
type publishAnswer struct {
	status      int
	contentType string
	body        string
}

func mercurePublishAnswer(t *testing.T, hubURL, token string, form url.Values) publishAnswer {
	t.Helper()
	status, body, h := mercurePublishRaw(t, hubURL, token, form)
	return publishAnswer{status, h.Get("Content-Type"), body}
}

// TestMercurePublishRefusals: what the spec forbids is a 400 (no Bearer
// challenge: the request is at fault, not its token), whatever the token
// allows; what exceeds a limit is a
// 413; Mercure's limits are the defaults.
func TestMercurePublishRefusals(t *testing.T) {
	c := startCaddy(t, mercurePublishSite)
	hub := c.base + "/.well-known/mercure"
	small := c.base + "/small"
	pub := mercurePublisher(t, "*")
	many := func(n int) url.Values {
		v := url.Values{}
		for i := range n {
			v.Add("topic", fmt.Sprintf("https://example.com/t/%d", i))
		}
		return v
	}
	cases := []struct {
		name   string
		hub    string
		form   url.Values
		status int
	}{
		{"no topic", hub, url.Values{"data": {"x"}}, 400},
		{"type mercure", hub, update("https://example.com/a", "x", "type", "mercure"), 400},
		{"id earliest", hub, update("https://example.com/a", "x", "id", "earliest"), 400},
		{"id starting with #", hub, update("https://example.com/a", "x", "id", "#1"), 400},
		{"topic *", hub, update("*", "x"), 400},
		{"alternate topic *", hub, url.Values{"topic": {"https://example.com/a", "*"}}, 400},
		{"id with LF", hub, update("https://example.com/a", "x", "id", "a\nid: forged"), 400},
		{"id with a C1 control", hub, update("https://example.com/a", "x", "id", "a\u0085b"), 400},
		{"id with a zero-width joiner (Cf)", hub, update("https://example.com/a", "x", "id", "a\u200db"), 400},
		{"type with CR", hub, update("https://example.com/a", "x", "type", "a\rdata: forged"), 400},
		{"type with DEL", hub, update("https://example.com/a", "x", "type", "a\x7f"), 400},
		{"type with a bidi override (Cf)", hub, update("https://example.com/a", "x", "type", "a\u202eb"), 400},
		{"topic with NUL", hub, update("https://example.com/a\x00", "x"), 400},
		{"topic with a bidi isolate (Cf)", hub, update("https://example.com/\u2066a", "x"), 400},
		{"alternate topic with a soft hyphen (Cf)", hub, url.Values{"topic": {"https://example.com/a", "https://example.com/b\u00ad"}}, 400},
		{"retry with a unit", hub, update("https://example.com/a", "x", "retry", "10s"), 400},
		{"retry negative", hub, update("https://example.com/a", "x", "retry", "-1"), 400},
		{"retry beyond 2^32-1 ms", hub, update("https://example.com/a", "x", "retry", "4294967296"), 413},
		{"1,001 topics", hub, many(1001), 413},
		{"more than max_topics", small, many(4), 413},
		{"a topic over max_topic_length", small, update("https://example.com/"+strings.Repeat("x", 64), "x"), 413},
		// The reserved test's parsing has a budget per request.
		{"a topic naming the hub's path with 32k segments", hub, update("https://example.com/mercure/"+strings.Repeat("a/", 1<<15), "x"), 413},
	}
	for _, tc := range cases {
		got := mercurePublishAnswer(t, tc.hub, pub, tc.form)
		if got.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, got.status, strings.TrimSpace(got.body), tc.status)
		}
	}
	// A 400 for the request, not its token, carries no Bearer challenge
	// (the spec's Error Responses; Mercure's hub answers so).
	status, _, challenge := mercurePublish(t, hub, pub, update("*", "x"))
	if status != 400 || challenge != "" {
		t.Errorf("topic *: %d %q", status, challenge)
	}
	// Accepted: Mercure's 1,000 topics, long fields (no cap but the
	// body's), data with anything in it, near misses of the reserved values.
	for name, form := range map[string]url.Values{
		"1,000 topics":            many(1000),
		"a 10KiB topic":           update("https://example.com/"+strings.Repeat("t", 10<<10), "x"),
		"128KiB of path segments": update("https://example.com/"+strings.Repeat("a/", 1<<16), "x"),
		"a 10KiB id":              update("https://example.com/a", "x", "id", strings.Repeat("i", 10<<10)),
		"a 10KiB type":            update("https://example.com/a", "x", "type", strings.Repeat("y", 10<<10)),
		"data with everything":    update("https://example.com/a", "a\x00\r\nid: x\u200b\u0085"),
		"type Mercure":            update("https://example.com/a", "x", "type", "Mercure"),
		"id earliest-ish":         update("https://example.com/a", "x", "id", "earliest2"),
	} {
		if got := mercurePublishAnswer(t, hub, pub, form); got.status != http.StatusOK {
			t.Errorf("%s: %d %s", name, got.status, strings.TrimSpace(got.body))
		}
	}
}

// TestMercurePublishReservedNamespace: every spelling of the hub's own
// path, resolved as a URL parser does, is refused with 400; near misses
// and what no URL parser reads are published.
func TestMercurePublishReservedNamespace(t *testing.T) {
	c := startCaddy(t, mercurePublishSite)
	pub := mercurePublisher(t, "*")
	for _, tc := range []struct {
		hub, topic string
		status     int
	}{
		{"/.well-known/mercure", "/.well-known/mercure/subscriptions/x", 400},
		{"/.well-known/mercure", "https://hub.example/.well-known/mercure/subscriptions/x", 400},
		{"/.well-known/mercure", `\.well-known\mercure\subscriptions\x`, 400},
		{"/.well-known/mercure", `https://hub.example/.well-known\mercure/x`, 400},
		{"/.well-known/mercure", "/.well-known/%6Dercure/x", 400},
		{"/.well-known/mercure", "/.well-known/%6dercure", 400},
		{"/.well-known/mercure", "/.well-known/mercure/../mercure/x", 400},
		{"/.well-known/mercure", "/x/%2e%2e/.well-known/mercure/x", 400},
		{"/.well-known/mercure", "mercure/subscriptions/x", 400}, // relative to the hub's URL
		{"/.well-known/mercure", "", 400},                        // the hub's URL itself
		{"/.well-known/mercure", "/.well-known/mercurey", 200},
		{"/.well-known/mercure", "/.well-known/mercure%2Fx", 200},
		{"/.well-known/mercure", "urn:x:/.well-known/mercure/x", 200},
		{"/.well-known/mercure", "https://bad host/.well-known/mercure/x", 200}, // no URL: no hub path
		{"/small", "/small/x", 400},                                             // the hub's own path, not a fixed one
		{"/small", `\small\x`, 400},
		{"/small", "/.well-known/mercure/x", 200},
	} {
		got := mercurePublishAnswer(t, c.base+tc.hub, pub, update(tc.topic, "x"))
		if got.status != tc.status {
			t.Errorf("hub %s, topic %q: %d %s, want %d", tc.hub, tc.topic, got.status, strings.TrimSpace(got.body), tc.status)
		}
	}
}

// TestMercurePublishIDs: the answer is the id; a reused id is published
// again; a resume by it starts after the earliest update bearing it and
// delivers the later ones bearing it; Mercure-Last-Event-ID is the
// resume point when it was found, "earliest" otherwise.
func TestMercurePublishIDs(t *testing.T) {
	forMercurePublishHubs(t, func(t *testing.T, h mercurePublishHubs) {
		pubURL, subURL := h.pub+"/.well-known/mercure", h.sub+"/.well-known/mercure"
		pub := mercurePublisher(t, "*")
		const topic, other = "https://example.com/books/1", "https://example.com/other"
		sel := subURL + "?topic=" + url.QueryEscape(topic)
		live := subscribe(t, client, sel).ready()

		first := mercurePublishAnswer(t, pubURL, pub, update(topic, "1", "id", "urn:dup"))
		if first != (publishAnswer{200, "text/plain; charset=utf-8", "urn:dup"}) {
			t.Fatalf("publish with an id: %+v", first)
		}
		hubID2 := mustMercurePublish(t, pubURL, pub, update(topic, "2"))
		if !strings.HasPrefix(hubID2, "#") {
			t.Fatalf("hub id %q", hubID2)
		}
		again := mercurePublishAnswer(t, pubURL, pub, update(topic, "3", "id", "urn:dup"))
		if again != first {
			t.Fatalf("a reused id answered %+v, a fresh one %+v", again, first)
		}
		otherID := mustMercurePublish(t, pubURL, pub, update(other, "elsewhere"))
		mustMercurePublish(t, pubURL, pub, update(topic, "4"))
		for i, want := range []string{"1", "2", "3", "4"} {
			if ev := live.next(); ev.Data != want {
				t.Fatalf("live event %d: %q, want %q", i, ev.Data, want)
			}
		}

		for _, tc := range []struct {
			name, resume, header string
			events               []string
			ids                  []string
		}{
			{"a reused id: after the earliest, the later bearer delivered", "urn:dup", "urn:dup", []string{"2", "3", "4"}, []string{hubID2, "urn:dup", ""}},
			{"a hub id", hubID2, hubID2, []string{"3", "4"}, nil},
			{"a hub id without its #", strings.TrimPrefix(hubID2, "#"), strings.TrimPrefix(hubID2, "#"), []string{"3", "4"}, nil},
			// The discovery cursor is a hub-wide one: an update of a
			// topic this subscriber does not follow is no loss.
			{"an update of another topic", otherID, otherID, []string{"4"}, nil},
			{"unknown", "urn:nowhere", "earliest", nil, nil},
		} {
			for _, how := range []struct {
				url     string
				headers []string
			}{
				{sel, []string{"Last-Event-ID: " + tc.resume}},
				{sel + "&last_event_id=" + url.QueryEscape(tc.resume), nil},
			} {
				s := subscribe(t, client, how.url, how.headers...).ready()
				if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != tc.header {
					t.Errorf("%s (%s): Mercure-Last-Event-ID %q, want %q", tc.name, how.url, got, tc.header)
				}
				for i, want := range tc.events {
					ev := s.next()
					if ev.Data != want || (tc.ids != nil && tc.ids[i] != "" && ev.LastEventID != tc.ids[i]) {
						t.Errorf("%s: event %d is %q id %q, want %q", tc.name, i, ev.Data, ev.LastEventID, want)
					}
				}
				s.close()
			}
		}
		// earliest: no preceding event.
		s := subscribe(t, client, sel+"&last_event_id=earliest").ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "earliest" {
			t.Errorf("earliest: Mercure-Last-Event-ID %q", got)
		}
		if ev := s.next(); ev.Data != "1" {
			t.Errorf("earliest: first event %q", ev.Data)
		}

		// Discarded: /small keeps 3 updates. A resume point gone from the
		// history answers "earliest"; the earliest retained bearer of a
		// reused id is the one resumed after.
		smallPub, smallSub := h.pub+"/small", h.sub+"/small?topic="+url.QueryEscape(topic)
		mustMercurePublish(t, smallPub, pub, update(topic, "s1", "id", "urn:s"))
		mustMercurePublish(t, smallPub, pub, update(topic, "s2", "id", "urn:gone"))
		mustMercurePublish(t, smallPub, pub, update(topic, "s3", "id", "urn:s"))
		mustMercurePublish(t, smallPub, pub, update(topic, "s4"))
		mustMercurePublish(t, smallPub, pub, update(topic, "s5"))
		// Retained: s3, s4, s5.
		s = subscribe(t, client, smallSub, "Last-Event-ID: urn:gone").ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "earliest" {
			t.Errorf("a discarded resume point: Mercure-Last-Event-ID %q, want earliest", got)
		}
		s = subscribe(t, client, smallSub, "Last-Event-ID: urn:s").ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "urn:s" {
			t.Errorf("a reused id whose earliest bearer was discarded: Mercure-Last-Event-ID %q, want urn:s", got)
		}
		if ev := s.next(); ev.Data != "s4" {
			t.Errorf("resumed after the retained bearer with %q, want s4", ev.Data)
		}
	})
}

// TestMercurePublishIDsHole6: publisher ids are no hub-wide namespace a
// scoped publisher can squat or probe. Bob's publisher may publish only
// to Bob's topics; Alice's private update bears an id. Bob reusing that id
// gets exactly the answer a fresh id gets (before: 409 for the id of an
// update he cannot read, 200 for a fresh one), and his own subscriber,
// resuming by his own update's id, is told the id back and gets what
// followed.
func TestMercurePublishIDsHole6(t *testing.T) {
	forMercurePublishHubs(t, func(t *testing.T, h mercurePublishHubs) {
		pubURL, subURL := h.pub+"/.well-known/mercure", h.sub+"/.well-known/mercure"
		const alice, bob = "https://example.com/users/alice/orders", "https://example.com/users/bob/orders"
		alicePub := mercurePublisher(t, alice)
		bobPub := mercurePublisher(t, bob)
		bobSub := mercureSubscriber(t, bob)

		mustMercurePublish(t, pubURL, alicePub, update(alice, "alice's order", "private", "on", "id", "order-1"))
		reused := mercurePublishAnswer(t, pubURL, bobPub, update(bob, "bob's order", "private", "on", "id", "order-1"))
		fresh := mercurePublishAnswer(t, pubURL, bobPub, update(bob, "bob's next", "private", "on", "id", "order-2"))
		if reused.status != http.StatusOK || reused.contentType != fresh.contentType || reused.body != "order-1" || fresh.body != "order-2" {
			t.Fatalf("an id another's private update bears: %+v; a fresh id: %+v", reused, fresh)
		}

		// Bob's subscriber resumes by his own update's id: the earliest
		// update bearing it is Alice's, which it may not read; it gets
		// everything after that it may read, its own update included.
		s := subscribe(t, client, subURL+"?topic="+url.QueryEscape(bob), "Last-Event-ID: order-1", "Authorization: Bearer "+bobSub).ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "order-1" {
			t.Errorf("Mercure-Last-Event-ID %q, want order-1", got)
		}
		for _, want := range []string{"bob's order", "bob's next"} {
			if ev := s.next(); ev.Data != want {
				t.Errorf("resumed with %q, want %q", ev.Data, want)
			}
		}
		if strings.Contains(s.rawString(), "alice") {
			t.Errorf("Alice's private update reached Bob:\n%s", s.rawString())
		}
	})
}
