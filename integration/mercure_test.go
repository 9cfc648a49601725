package integration

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The keys of the test hub: one per role, as the protocol recommends.
const (
	mercurePubKey = "publisher-secret-0123456789abcdef"
	mercureSubKey = "subscriber-secret-0123456789abcde"
)

// mercureSite serves one Mercure hub that lets anonymous subscribers in,
// and one (hub "strict") that does not. Both are in compatibility mode
// with Mercure's implicit issuer (top-level keys), so that 0.x clients and
// tokens work beside 1.0 ones (integration/mercure_auth_test.go tests
// modern mode).
const mercureSite = `:{PORT} {
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
		anonymous
		heartbeat 200ms
	}
	sse_mercure /strict {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
		hub strict
	}
}
`

// mercureDetailType is the type of a Mercure authorization detail.
const mercureDetailType = "https://mercure.rocks/authorization-detail"

// challengeIs reports whether a WWW-Authenticate value is the challenge
// want ("Bearer", or `Bearer error="..."`) with its resource_metadata
// parameter; want "" means no challenge.
func challengeIs(got, want string) bool {
	if want == "" {
		return got == ""
	}
	sep := " "
	if want != "Bearer" {
		sep = ", "
	}
	return strings.HasPrefix(got, want+sep+`resource_metadata="`) && strings.Contains(got, `/.well-known/oauth-protected-resource/`)
}

// mercureToken signs claims with key: a 0.x token (typ JWT), or a 1.0
// access token (typ at+jwt) when accessToken is set. Every token expires.
func mercureToken(t *testing.T, key string, accessToken bool, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if accessToken {
		tok.Header["typ"] = "at+jwt"
	}
	s, err := tok.SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mercurePublish posts a form and returns status, body and the
// WWW-Authenticate header.
func mercurePublish(t *testing.T, hubURL, token string, form url.Values, headers ...string) (int, string, string) {
	t.Helper()
	status, body, h := mercurePublishRaw(t, hubURL, token, form, headers...)
	return status, body, h.Get("WWW-Authenticate")
}

// mercurePublishRaw posts a form (with the token, when not "") and returns
// the status, the whole body and the headers.
func mercurePublishRaw(t *testing.T, hubURL, token string, form url.Values, headers ...string) (int, string, http.Header) {
	t.Helper()
	if token != "" {
		headers = append(headers, "Authorization: Bearer "+token)
	}
	req := newPost(t, hubURL, "application/x-www-form-urlencoded", form.Encode(), headers...)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// mustMercurePublish publishes and returns the update's id.
func mustMercurePublish(t *testing.T, hubURL, token string, form url.Values) string {
	t.Helper()
	status, body, _ := mercurePublish(t, hubURL, token, form)
	if status != http.StatusOK {
		t.Fatalf("publish %s: %d %s", form.Encode(), status, body)
	}
	return body
}

func update(topic, data string, extra ...string) url.Values {
	v := url.Values{"topic": {topic}, "data": {data}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Add(extra[i], extra[i+1])
	}
	return v
}

// TestMercure runs one hub through the protocol: both token generations
// publishing, anonymous and authorized subscribers, private updates,
// publisher ids, resume, earliest and the error answers.
func TestMercure(t *testing.T) {
	c := startCaddy(t, mercureSite)
	hub := c.base + "/.well-known/mercure"

	pub0 := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	pub1 := mercureToken(t, mercurePubKey, true, jwt.MapClaims{"authorization_details": []any{map[string]any{
		"type": mercureDetailType, "actions": []string{"publish"},
		"topics": []any{map[string]any{"match": "https://example.com/books/:id", "match_type": "urlpattern"}},
	}}})
	// Allowed to read the private updates of book 1 only.
	sub0 := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"https://example.com/books/1"}}})
	sub1 := mercureToken(t, mercureSubKey, true, jwt.MapClaims{"authorization_details": []any{map[string]any{
		"type": mercureDetailType, "actions": []string{"subscribe"},
		"topics": []any{map[string]any{"match": "https://example.com/books/1"}},
	}}})
	books := hub + "?topic=" + url.QueryEscape("https://example.com/books/{id}")

	t.Run("private updates reach only the subscribers allowed to read them", func(t *testing.T) {
		anon := subscribe(t, client, books).ready()
		byHeader := subscribe(t, client, books, "Authorization: Bearer "+sub0).ready()
		byCookie := subscribe(t, client, hub+"?match_urlpattern="+url.QueryEscape("https://example.com/books/:id"),
			"Cookie: mercureAuthorization="+sub1).ready()
		byQuery := subscribe(t, client, books+"&authorization="+sub0).ready()

		mustMercurePublish(t, hub, pub0, update("https://example.com/books/2", "private-2", "private", "on"))
		mustMercurePublish(t, hub, pub1, update("https://example.com/books/1", "private-1", "private", ""))
		mustMercurePublish(t, hub, pub0, update("https://example.com/books/3", "public-marker"))

		if ev := anon.next(); ev.Data != "public-marker" {
			t.Errorf("anonymous subscriber got %q before the public marker", ev.Data)
		}
		for name, s := range map[string]*subscriber{"header": byHeader, "cookie": byCookie, "query": byQuery} {
			if ev := s.next(); ev.Data != "private-1" {
				t.Errorf("%s: first event %q, want private-1 (private-2 is not allowed)", name, ev.Data)
			}
			if ev := s.next(); ev.Data != "public-marker" {
				t.Errorf("%s: second event %q, want the marker", name, ev.Data)
			}
		}
	})

	t.Run("alternate topics authorize and route alike", func(t *testing.T) {
		s := subscribe(t, client, books, "Authorization: Bearer "+sub0).ready()
		form := update("https://example.com/books/9", "via-alternate", "private", "on")
		form.Add("topic", "https://example.com/books/1")
		mustMercurePublish(t, hub, pub0, form)
		if ev := s.next(); ev.Data != "via-alternate" {
			t.Errorf("got %q", ev.Data)
		}
	})

	t.Run("publish answers and their challenges", func(t *testing.T) {
		cases := []struct {
			name, token string
			form        url.Values
			status      int
			challenge   string
		}{
			{"no token", "", update("https://example.com/books/1", "x"), 401, "Bearer"},
			{"invalid token", "not.a.token", update("https://example.com/books/1", "x"), 401, `Bearer error="invalid_token"`},
			{"subscriber's token", sub0, update("https://example.com/books/1", "x"), 401, `Bearer error="invalid_token"`},
			{"1.0 token outside its topics", pub1, update("https://example.com/users/1", "x"), 403, `Bearer error="insufficient_scope"`},
			{"1.0 token, one alternate outside", pub1, url.Values{"topic": {"https://example.com/books/1", "https://example.com/users/1"}}, 403, `Bearer error="insufficient_scope"`},
			{"no topic", pub0, url.Values{"data": {"x"}}, 400, ""},
			{"bad retry", pub0, update("a", "x", "retry", "10s"), 400, ""},
			{"id starting with #", pub0, update("a", "x", "id", "#1"), 400, ""},
			{"reserved namespace", pub0, update("/.well-known/mercure/subscriptions/x", "x"), 400, ""},
		}
		for _, tc := range cases {
			status, body, challenge := mercurePublish(t, hub, tc.token, tc.form)
			if status != tc.status || !challengeIs(challenge, tc.challenge) {
				t.Errorf("%s: %d %q (%s), want %d %q", tc.name, status, challenge, strings.TrimSpace(body), tc.status, tc.challenge)
			}
		}
		// The cookie on a publish: only from the hub's own origin.
		status, _, _ := mercurePublish(t, hub, "", update("a", "x"), "Cookie: mercureAuthorization="+pub0, "Origin: https://evil.example")
		mustStatus(t, "cookie publish from another origin", status, http.StatusBadRequest, nil)
		status, body, _ := mercurePublish(t, hub, "", update("a", "x"), "Cookie: mercureAuthorization="+pub0, "Origin: "+c.base)
		mustStatus(t, "cookie publish from the hub's origin", status, http.StatusOK, []byte(body))

		status, _ = post(t, client, hub, "application/json", stringsReader(`{"topic":"a"}`), "Authorization: Bearer "+pub0)
		mustStatus(t, "JSON body", status, http.StatusUnsupportedMediaType, nil)
		status, _ = post(t, client, hub, "application/x-www-form-urlencoded", stringsReader("topic=a&data="+strings.Repeat("x", 2<<20)), "Authorization: Bearer "+pub0)
		mustStatus(t, "body over max_body", status, http.StatusRequestEntityTooLarge, nil)
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodPut, hub, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST, QUERY" {
			t.Errorf("PUT: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})

	t.Run("hub ids, publisher ids, resume and the Last-Event-ID answer", func(t *testing.T) {
		const topic = "https://example.com/books/42"
		sel := hub + "?topic=" + url.QueryEscape(topic)
		live := subscribe(t, client, sel).ready()
		hubID := mustMercurePublish(t, hub, pub0, update(topic, "first"))
		if !strings.HasPrefix(hubID, "#") {
			t.Errorf("hub-chosen id %q: want the #-fragment form", hubID)
		}
		if got := mustMercurePublish(t, hub, pub0, update(topic, "second", "id", "urn:book42:v2", "type", "change", "retry", "3000")); got != "urn:book42:v2" {
			t.Errorf("publish answered %q, want the publisher's id", got)
		}
		mustMercurePublish(t, hub, pub0, update(topic, "private-third", "private", "on"))
		mustMercurePublish(t, hub, pub0, update(topic, "fourth"))
		if ev := live.next(); ev.Data != "first" || ev.LastEventID != hubID {
			t.Errorf("first: %+v, want id %s", ev, hubID)
		}
		if ev := live.next(); ev.Data != "second" || ev.LastEventID != "urn:book42:v2" || ev.Type != "change" {
			t.Errorf("second: %+v", ev)
		}
		live.waitRaw("retry: 3000\n")
		if ev := live.next(); ev.Data != "fourth" {
			t.Errorf("anonymous live subscriber got %q after second, want fourth", ev.Data)
		}

		// A reused id is published (integration/mercure_publish_test.go).

		// Resume after the publisher's id, by the header and by the query.
		for _, how := range []struct {
			url     string
			headers []string
		}{
			{sel, []string{"Last-Event-ID: urn:book42:v2"}},
			{sel + "&lastEventID=" + url.QueryEscape("urn:book42:v2"), nil},
			{sel + "&last_event_id=" + url.QueryEscape("urn:book42:v2"), nil},
		} {
			s := subscribe(t, client, how.url, how.headers...).ready()
			if got, old := s.resp.Header.Get("Last-Event-ID"), s.resp.Header.Get("Mercure-Last-Event-ID"); got != "urn:book42:v2" || old != got {
				t.Errorf("%s: response Last-Event-ID %q (Mercure-Last-Event-ID %q), want the resume point in both", how.url, got, old)
			}
			if ev := s.next(); ev.Data != "fourth" {
				t.Errorf("%s: resumed with %q, want fourth (the private update is not for anonymous)", how.url, ev.Data)
			}
		}
		// Resume by the hub id, both with and without the '#'.
		s := subscribe(t, client, sel, "Last-Event-ID: "+hubID).ready()
		if ev := s.next(); ev.Data != "second" {
			t.Errorf("resume by %s: %q", hubID, ev.Data)
		}
		// The authorized subscriber's predecessor may be a private update.
		sub42 := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{topic}}})
		s = subscribe(t, client, sel, "Last-Event-ID: "+hubID, "Authorization: Bearer "+sub42).ready()
		for _, want := range []string{"second", "private-third", "fourth"} {
			if ev := s.next(); ev.Data != want {
				t.Errorf("authorized resume: %q, want %q", ev.Data, want)
			}
		}
		// An unknown resume point: the stream starts now, no reset event,
		// and the header says so.
		s = subscribe(t, client, sel, "Last-Event-ID: urn:nowhere").ready()
		if got := s.resp.Header.Get("Last-Event-ID"); got != "earliest" {
			t.Errorf("unknown resume point: response Last-Event-ID %q, want earliest", got)
		}
		mustMercurePublish(t, hub, pub0, update(topic, "fifth"))
		if ev := s.next(); ev.Data != "fifth" {
			t.Errorf("after an unknown resume point: %q", ev.Data)
		}
		if strings.Contains(s.rawString(), "event: reset") {
			t.Errorf("a reset event on a Mercure stream:\n%s", s.rawString())
		}
		// earliest: everything retained that this subscriber may see.
		s = subscribe(t, client, sel+"&lastEventID=earliest").ready()
		if got := s.resp.Header.Get("Last-Event-ID"); got != "earliest" {
			t.Errorf("earliest: response Last-Event-ID %q", got)
		}
		for _, want := range []string{"first", "second", "fourth", "fifth"} {
			if ev := s.next(); ev.Data != want {
				t.Errorf("earliest: %q, want %q", ev.Data, want)
			}
		}
		// A fresh subscriber without a resume point gets no such header.
		if s := subscribe(t, client, sel).ready(); s.resp.Header.Get("Last-Event-ID") != "" {
			t.Errorf("Last-Event-ID answered to a request without a resume point")
		}
	})

	t.Run("subscribe answers and their challenges", func(t *testing.T) {
		strict := c.base + "/strict?topic=a"
		cases := []struct {
			name, url string
			headers   []string
			status    int
			challenge string
		}{
			{"no token on a hub without anonymous", strict, nil, 401, "Bearer"},
			{"invalid token", strict, []string{"Authorization: Bearer x.y.z"}, 401, `Bearer error="invalid_token"`},
			{"publisher's token", strict, []string{"Authorization: Bearer " + pub0}, 401, `Bearer error="invalid_token"`},
			{"no selector", hub + "?foo=1", nil, 400, ""},
			{"misspelt matcher", hub + "?matchRegex=a", nil, 400, ""},
			{"two Bearer headers", hub + "?topic=a", []string{"Authorization: Bearer a", "Authorization: Bearer b"}, 400, `Bearer error="invalid_request"`},
			{"bad URL pattern", hub + "?match_urlpattern=" + url.QueryEscape("https://example.com/(["), nil, 400, ""},
		}
		for _, tc := range cases {
			req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, tc.url, nil)
			for _, h := range tc.headers {
				k, v, _ := strings.Cut(h, ":")
				req.Header.Add(k, strings.TrimSpace(v))
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || !challengeIs(resp.Header.Get("WWW-Authenticate"), tc.challenge) {
				t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
			}
		}
		// With a token, the strict hub serves.
		s := subscribe(t, client, strict, "Authorization: Bearer "+sub0).ready()
		mustMercurePublish(t, c.base+"/strict", pub0, update("a", "strict-ok"))
		if ev := s.next(); ev.Data != "strict-ok" {
			t.Errorf("strict hub: %q", ev.Data)
		}
	})

	t.Run("the stream ends when the token expires", func(t *testing.T) {
		short := mercureToken(t, mercureSubKey, false, jwt.MapClaims{
			"mercure": map[string]any{"subscribe": []string{"*"}}, "exp": time.Now().Add(2 * time.Second).Unix()})
		s := subscribe(t, client, books, "Authorization: Bearer "+short).ready()
		start := time.Now()
		s.waitEnd()
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("stream ended %v after subscribing, want by the token's exp (2s)", d)
		}
	})
}

// TestMercureRedisTwoInstances: two Caddies on one Redis are one Mercure
// hub: an update published on A reaches an authorized subscriber of B,
// and either resumes by its id.
func TestMercureRedisTwoInstances(t *testing.T) {
	_, _, a, b := twoInstancesOf(t, false, mercureSite)

	const topic = "https://example.com/orders/7"
	pub := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"https://example.com/orders/{id}"}}})
	sub := mercureToken(t, mercureSubKey, true, jwt.MapClaims{"authorization_details": []any{map[string]any{
		"type": mercureDetailType, "actions": []string{"subscribe"},
		"topics": []any{map[string]any{"match": "https://example.com/orders/:id", "match_type": "urlpattern"}},
	}}})
	sel := "/.well-known/mercure?match=" + url.QueryEscape(topic)

	onB := subscribe(t, client, b.base+sel, "Authorization: Bearer "+sub).ready()
	anonB := subscribe(t, client, b.base+sel).ready()
	id1 := mustMercurePublish(t, a.base+"/.well-known/mercure", pub, update(topic, "private-order", "private", "on", "id", "urn:order:7:1"))
	mustMercurePublish(t, a.base+"/.well-known/mercure", pub, update(topic, "public-order"))
	if ev := onB.next(); ev.Data != "private-order" || ev.LastEventID != id1 {
		t.Errorf("B's authorized subscriber: %+v, want the private update with id %s", ev, id1)
	}
	if ev := anonB.next(); ev.Data != "public-order" {
		t.Errorf("B's anonymous subscriber got %q first, want the public update", ev.Data)
	}
	// The id is known hub-wide: resume on either instance. The response
	// echoes the resume point, the cursor the client sent, to any
	// subscriber (spec, Authorization on Event Replay): it names no other
	// event, and the replay is filtered.
	for name, p := range map[string]*caddyProc{"A": a, "B": b} {
		s := subscribe(t, client, p.base+sel, "Last-Event-ID: "+id1, "Authorization: Bearer "+sub).ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != id1 {
			t.Errorf("%s: response Mercure-Last-Event-ID %q, want %s", name, got, id1)
		}
		if ev := s.next(); ev.Data != "public-order" {
			t.Errorf("%s: resumed with %q", name, ev.Data)
		}
		s = subscribe(t, client, p.base+sel, "Last-Event-ID: "+id1).ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != id1 {
			t.Errorf("%s: anonymous resume answered Mercure-Last-Event-ID %q, want the resume point", name, got)
		}
		if ev := s.next(); ev.Data != "public-order" {
			t.Errorf("%s: anonymous resumed with %q", name, ev.Data)
		}
	}
	// A reused id is published, from the other instance too
	// (integration/mercure_publish_test.go).
	if got := mustMercurePublish(t, b.base+"/.well-known/mercure", pub, update(topic, "dup", "id", "urn:order:7:1")); got != "urn:order:7:1" {
		t.Errorf("a reused id answered %q", got)
	}
}

// TestMercureMaxSubscribers: past max_subscribers a Mercure subscriber is
// told to come back later (200 and a retry:, which EventSource obeys),
// and a place freed by a leaving subscriber is taken again.
func TestMercureMaxSubscribers(t *testing.T) {
	c := startCaddy(t, `:{PORT} {
	sse_mercure /.well-known/mercure {
		publisher_jwt `+mercurePubKey+`
		protocol_version_compatibility 8
		anonymous
		max_subscribers 1
	}
}
`)
	url := c.base + "/.well-known/mercure?topic=*"
	first := subscribe(t, client, url).ready()
	second := subscribe(t, client, url)
	if second.resp.StatusCode != http.StatusOK {
		t.Fatalf("over the limit: status %s, want 200 (a 503 stops EventSource for good)", second.resp.Status)
	}
	second.waitEnd()
	if raw := second.rawString(); !strings.Contains(raw, "retry: ") || !strings.Contains(raw, "too many subscribers") {
		t.Fatalf("over the limit the stream said %q, want a retry: and the reason", raw)
	}
	first.close()
	first.waitEnd()
	// The first one's place is given back when its stream ends on the
	// server; a new subscriber gets it within the safety net.
	deadline := time.Now().Add(5 * time.Second)
	for {
		third := subscribe(t, client, url)
		third.waitRawAfter(0, "\n")
		if !strings.Contains(third.rawString(), "too many subscribers") {
			third.close()
			break
		}
		third.waitEnd()
		if time.Now().After(deadline) {
			t.Fatal("the place of a subscriber that left was not given back")
		}
	}
}

// mercureModernSite is a Mercure 1.0 hub as its users write it: an issuer
// block, and the resource identifier pinned, as several instances behind
// one public URL need (each would otherwise derive its own from the Host).
const mercureModernSite = `:{PORT} {
	sse_mercure /.well-known/mercure {
		issuer https://issuer.example {
			publisher {
				jwt ` + mercurePubKey + `
			}
			subscriber {
				jwt ` + mercureSubKey + `
			}
		}
		resource_identifier https://hub.example.com/.well-known/mercure
		anonymous
		heartbeat 200ms
	}
}
`

// TestMercureRedisTwoInstancesModern: two instances on one Redis are one
// Mercure 1.0 hub. A 1.0 token minted for the public hub URL publishes on
// A; B's subscribers get the private update only with a 1.0 subscriber
// token (in the header, or the __Secure- cookie), anonymous ones only the
// public one; a reused id resumes on either instance after its earliest
// bearer, and the resume answer echoes it.
func TestMercureRedisTwoInstancesModern(t *testing.T) {
	_, _, a, b := twoInstancesOf(t, false, mercureModernSite)
	const aud = "https://hub.example.com/.well-known/mercure"
	const topic = "https://example.com/orders/7"
	pub := mercureCLIToken(t, mercurePubKey, "https://issuer.example", aud, "https://example.com/orders/7")
	sub := mercureToken(t, mercureSubKey, true, jwt.MapClaims{"iss": "https://issuer.example", "aud": aud,
		"authorization_details": []any{map[string]any{
			"type": mercureDetailType, "actions": []string{"subscribe"},
			"topics": []any{map[string]any{"match": "https://example.com/orders/:id", "match_type": "urlpattern"}},
		}}})
	sel := "/.well-known/mercure?match=" + url.QueryEscape(topic)

	byHeader := subscribe(t, client, b.base+sel, "Authorization: Bearer "+sub).ready()
	byCookie := subscribe(t, client, b.base+sel, "Cookie: __Secure-mercure_access_token="+sub).ready()
	anon := subscribe(t, client, b.base+sel).ready()
	hubA := a.base + "/.well-known/mercure"
	mustMercurePublish(t, hubA, pub, update(topic, "private-order", "private", "on", "id", "urn:order:7"))
	mustMercurePublish(t, hubA, pub, update(topic, "public-order", "id", "urn:order:7")) // a reused id
	mustMercurePublish(t, hubA, pub, update(topic, "last"))
	for name, s := range map[string]*subscriber{"header": byHeader, "cookie": byCookie} {
		for _, want := range []string{"private-order", "public-order", "last"} {
			if ev := s.next(); ev.Data != want {
				t.Errorf("B's subscriber with a token in the %s: %q, want %q", name, ev.Data, want)
			}
		}
	}
	for _, want := range []string{"public-order", "last"} {
		if ev := anon.next(); ev.Data != want {
			t.Errorf("B's anonymous subscriber: %q, want %q", ev.Data, want)
		}
	}
	// The reused id resumes after its earliest bearer, on either instance:
	// the later bearer is delivered.
	for name, p := range map[string]*caddyProc{"A": a, "B": b} {
		s := subscribe(t, client, p.base+sel, "Last-Event-ID: urn:order:7").ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "urn:order:7" {
			t.Errorf("%s: Mercure-Last-Event-ID %q, want the resume point", name, got)
		}
		if got := s.resp.Header.Get("Last-Event-ID"); got != "" {
			t.Errorf("%s: a Last-Event-ID response header %q in modern mode", name, got)
		}
		for _, want := range []string{"public-order", "last"} {
			if ev := s.next(); ev.Data != want {
				t.Errorf("%s: resumed with %q, want %q", name, ev.Data, want)
			}
		}
	}
}
