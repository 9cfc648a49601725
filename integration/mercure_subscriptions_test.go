package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sse "github.com/tmaxmax/go-sse"
)

// mercureSubsSite is a hub with subscription events and the API; its
// matcher covers the API's paths under /.well-known/mercure/.
const mercureSubsSite = `:{PORT} {
	sse_mercure /.well-known/mercure* {
		issuer https://issuer.example
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		subscriptions
		subscriptions_ttl 1s
		heartbeat 200ms
	}
}
`

// mercureSubsCompatSite is the same hub in compatibility mode.
var mercureSubsCompatSite = strings.Replace(mercureSubsSite, "subscriptions\n", "subscriptions\n\t\tprotocol_version_compatibility 8\n", 1)

// subsDoc is a 1.0 subscription document.
type subsDoc struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	MatchType  string          `json:"match_type"`
	Match      string          `json:"match"`
	Subscriber string          `json:"subscriber"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload"`
}

type subsCollection struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	Subscriptions []subsDoc `json:"subscriptions"`
}

// legacySubsDoc is a 0.x (JSON-LD) subscription document.
type legacySubsDoc struct {
	Context     string          `json:"@context"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Topic       string          `json:"topic"`
	Subscriber  string          `json:"subscriber"`
	Active      bool            `json:"active"`
	Payload     json.RawMessage `json:"payload"`
	LastEventID string          `json:"lastEventID"`
}

type legacySubsCollection struct {
	Context       string          `json:"@context"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	LastEventID   string          `json:"lastEventID"`
	Subscriptions []legacySubsDoc `json:"subscriptions"`
}

// subsWatchPattern selects every subscription event of the default hub.
const subsWatchPattern = "/.well-known/mercure/subscriptions/*"

// subsWatcherToken may read every subscription event and API resource of
// the hub at hubURL, and the marker topic.
func subsWatcherToken(t *testing.T, hubURL string) string {
	return subsToken(t, hubURL, "", subsDetail{matchers: []subsMatcher{
		{match: "/.well-known/mercure/subscriptions"},
		{match: subsWatchPattern, matchType: "urlpattern"},
		{match: "urn:marker"},
	}})
}

// subsWatchURL subscribes to every subscription event and the marker.
func subsWatchURL(hubURL string) string {
	return hubURL + "?match_urlpattern=" + url.QueryEscape(subsWatchPattern) + "&match=urn:marker"
}

// subsEventRaw reads the next event of s as a subscription event: a
// hub-generated update of the reserved type mercure.
func subsEventRaw(t *testing.T, s *subscriber) sse.Event {
	t.Helper()
	ev := s.next()
	if ev.Type != "mercure" {
		t.Errorf("subscription event of type %q, want mercure: %s", ev.Type, ev.Data)
	}
	return ev
}

// subsEvent reads the next event of s as a 1.0 subscription document.
func subsEvent(t *testing.T, s *subscriber) subsDoc {
	t.Helper()
	ev := subsEventRaw(t, s)
	var d subsDoc
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
		t.Fatalf("event %q is not a subscription document: %v", ev.Data, err)
	}
	if d.Type != "subscription" || d.ID == "" || strings.Contains(ev.Data, "@context") {
		t.Errorf("event %s is not a 1.0 subscription document", ev.Data)
	}
	return d
}

// subsGet GETs an API URL and returns the status, headers and body.
func subsGet(t *testing.T, u, token string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		if k, v, ok := strings.Cut(h, ":"); ok {
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// subsCursor reads the last-event-id of an API answer's Link header, after
// checking the header names the hub.
func subsCursor(t *testing.T, hdr http.Header, hubURL string) string {
	t.Helper()
	link := hdr.Get("Link")
	// A relative reference to the hub, as Mercure's hub sends it.
	u, err := url.Parse(hubURL)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "<" + u.EscapedPath() + `>; rel="mercure"; last-event-id="`
	suffix := `"; type="mercure"; content-type="application/json"`
	if !strings.HasPrefix(link, prefix) || !strings.HasSuffix(link, suffix) {
		t.Fatalf("Link %q, want %s…%s", link, prefix, suffix)
	}
	return strings.TrimSuffix(strings.TrimPrefix(link, prefix), suffix)
}

// subsList GETs a 1.0 collection; it returns it with its cursor.
func subsList(t *testing.T, hubURL, u, token string) (subsCollection, string) {
	t.Helper()
	status, hdr, body := subsGet(t, u, token)
	mustStatus(t, "GET "+u, status, http.StatusOK, body)
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := hdr.Get("Cache-Control"); !strings.Contains(cc, "must-revalidate") || !strings.Contains(cc, "private") {
		t.Errorf("Cache-Control %q", cc)
	}
	var c subsCollection
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if c.Type != "subscriptions" || strings.Contains(string(body), "@context") || strings.Contains(string(body), "lastEventID") {
		t.Errorf("not a 1.0 collection: %s", body)
	}
	return c, subsCursor(t, hdr, hubURL)
}

// payloadToken subscribes to the books as sub, with a payload naming it.
func payloadToken(t *testing.T, hubURL, name string) string {
	return subsToken(t, hubURL, "https://example.com/users/"+name, subsDetail{
		matchers: []subsMatcher{{match: "https://example.com/books/:id", matchType: "urlpattern"}},
		payload:  map[string]any{"name": name}})
}

// TestMercureSubscriptions: events for authorized watchers only, as
// private updates of type mercure, with a hub-drawn subscriber and the
// payload of the token's matching detail; the API's shapes, cursor,
// validators and refusals; the cursor resumes without a gap.
func TestMercureSubscriptions(t *testing.T) {
	c := startCaddy(t, mercureSubsSite)
	hub := c.base + "/.well-known/mercure"
	pub := mercureCLIToken(t, mercurePubKey, "https://issuer.example", hub, "*")
	watcherTok := subsWatcherToken(t, hub)
	watcher := subscribe(t, client, subsWatchURL(hub), "Authorization: Bearer "+watcherTok).ready()
	// The watchers that must not see the events: anonymous, and a token
	// that allows other topics only.
	anon := subscribe(t, client, subsWatchURL(hub)).ready()
	other := subscribe(t, client, subsWatchURL(hub), "Authorization: Bearer "+payloadToken(t, hub, "carol")).ready()
	// The watchers' own subscriptions were announced first: two each.
	for range 3 * 2 {
		subsEvent(t, watcher)
	}

	const book = "https://example.com/books/1"
	alice := subscribe(t, client, hub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+payloadToken(t, hub, "alice")).ready()
	first := subsEvent(t, watcher)
	if !strings.HasPrefix(first.Subscriber, "urn:uuid:") || len(first.Subscriber) != 45 {
		t.Fatalf("subscriber %q: want a hub-drawn urn:uuid, not the token's sub", first.Subscriber)
	}
	wantID := "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/" + url.QueryEscape(first.Subscriber)
	check := func(who string, d subsDoc, active bool) {
		t.Helper()
		if d.ID != wantID || d.Type != "subscription" || d.MatchType != "exact" || d.Match != book ||
			d.Subscriber != first.Subscriber || d.Active != active || string(d.Payload) != `{"name":"alice"}` {
			t.Errorf("%s: %+v, want alice's subscription %s, active %v", who, d, wantID, active)
		}
	}
	check("watcher", first, true)

	t.Run("API", func(t *testing.T) {
		all, cursor := subsList(t, hub, hub+"/subscriptions", watcherTok)
		if all.ID != "/.well-known/mercure/subscriptions" || !strings.HasPrefix(cursor, "#") || len(all.Subscriptions) != 7 {
			t.Errorf("collection (cursor %q): %+v", cursor, all)
		}
		perMatch, _ := subsList(t, hub, hub+"/subscriptions/exact/"+url.PathEscape(book), watcherTok)
		if perMatch.ID != "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1" ||
			len(perMatch.Subscriptions) != 1 || perMatch.Subscriptions[0].ID != wantID {
			t.Errorf("per matcher: %+v", perMatch)
		}
		status, hdr, body := subsGet(t, c.base+wantID, watcherTok)
		mustStatus(t, "single", status, http.StatusOK, body)
		if ct := hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("single: Content-Type %q", ct)
		}
		var one subsDoc
		_ = json.Unmarshal(body, &one)
		check("single", one, true)
		if got := subsCursor(t, hdr, hub); got != cursor {
			t.Errorf("single cursor %q, collection's %q (nothing happened between)", got, cursor)
		}
		// The single answer is the event's document, unchanged.
		if strings.Contains(string(body), "last") {
			t.Errorf("single answer with a cursor in its body: %s", body)
		}

		// Validators: the same answer is a 304, a changed one is not.
		etag := hdr.Get("ETag")
		if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
			t.Fatalf("ETag %q", etag)
		}
		status, hdr2, body := subsGet(t, c.base+wantID, watcherTok, "If-None-Match: "+etag)
		mustStatus(t, "If-None-Match, unchanged", status, http.StatusNotModified, body)
		if len(body) != 0 || hdr2.Get("ETag") != etag || hdr2.Get("Link") != hdr.Get("Link") {
			t.Errorf("304: body %q, ETag %q, Link %q", body, hdr2.Get("ETag"), hdr2.Get("Link"))
		}
		_, allHdr, _ := subsGet(t, hub+"/subscriptions", watcherTok)
		bob := subscribe(t, client, hub+"?match=urn:bob").ready()
		if d := subsEvent(t, watcher); d.Match != "urn:bob" {
			t.Fatalf("bob's event: %+v", d)
		}
		status, _, body = subsGet(t, hub+"/subscriptions", watcherTok, "If-None-Match: "+allHdr.Get("ETag"))
		mustStatus(t, "If-None-Match after a change", status, http.StatusOK, body)
		bob.close()
		if d := subsEvent(t, watcher); d.Match != "urn:bob" || d.Active {
			t.Fatalf("bob's end: %+v", d)
		}

		// Refusals.
		status, _, body = subsGet(t, hub+"/subscriptions", "")
		mustStatus(t, "no token", status, http.StatusUnauthorized, body)
		status, _, body = subsGet(t, hub+"/subscriptions", payloadToken(t, hub, "dave"))
		mustStatus(t, "a token for other topics", status, http.StatusForbidden, body)
		// A token for one subscription reads it, not the collection.
		narrow := subsToken(t, hub, "", subsDetail{matchers: []subsMatcher{{match: wantID}}})
		status, _, body = subsGet(t, c.base+wantID, narrow)
		mustStatus(t, "narrow token, its subscription", status, http.StatusOK, body)
		status, _, body = subsGet(t, hub+"/subscriptions", narrow)
		mustStatus(t, "narrow token, the collection", status, http.StatusForbidden, body)
		status, _, body = subsGet(t, hub+"/subscriptions/exact/nope/nobody", watcherTok)
		mustStatus(t, "unknown subscription", status, http.StatusNotFound, body)
		status, _, body = subsGet(t, hub+"/subscriptions/exact/a/b/c", watcherTok)
		mustStatus(t, "no such resource", status, http.StatusNotFound, body)
		// The draft's shapes are gone in modern mode.
		status, _, body = subsGet(t, hub+"/subscriptions/Exact/"+url.PathEscape(book), watcherTok)
		mustStatus(t, "the draft's capitalized type", status, http.StatusNotFound, body)
		status, _, body = subsGet(t, hub+"/subscriptions/"+url.PathEscape(book), watcherTok)
		mustStatus(t, "a 0.x path in modern mode", status, http.StatusNotFound, body)
		status, body2, _ := mercurePublish(t, hub+"/subscriptions", pub, update("urn:x", "x"))
		mustStatus(t, "POST", status, http.StatusMethodNotAllowed, []byte(body2))
	})

	t.Run("the cursor resumes the events without a gap", func(t *testing.T) {
		_, cursor := subsList(t, hub, hub+"/subscriptions", watcherTok)
		bob := subscribe(t, client, hub+"?match=urn:bob2").ready() // anonymous
		resumed := subscribe(t, client, subsWatchURL(hub)+"&last_event_id="+url.QueryEscape(cursor),
			"Authorization: Bearer "+watcherTok).ready()
		d := subsEvent(t, resumed)
		if d.Match != "urn:bob2" || !d.Active || !strings.HasPrefix(d.Subscriber, "urn:uuid:") || d.Payload != nil {
			t.Errorf("resumed watcher: first event %+v, want bob's subscription", d)
		}
		if d2 := subsEvent(t, watcher); d2.ID != d.ID {
			t.Errorf("live watcher: %+v", d2)
		}
		for range 2 { // the resumed watcher's own two
			subsEvent(t, watcher)
		}
		bob.close()
		if d2 := subsEvent(t, watcher); d2.ID != d.ID || d2.Active {
			t.Errorf("after bob left: %+v", d2)
		}
		resumed.close()
		for range 2 {
			if d := subsEvent(t, watcher); d.Active {
				t.Errorf("after the resumed watcher left: %+v", d)
			}
		}
	})

	alice.close()
	check("watcher, alice gone", subsEvent(t, watcher), false)
	status, _, body := subsGet(t, c.base+wantID, watcherTok)
	mustStatus(t, "alice's subscription after she left", status, http.StatusNotFound, body)

	// The marker: the unauthorized watchers got no subscription event
	// before it.
	mustMercurePublish(t, hub, pub, update("urn:marker", "marker"))
	for name, s := range map[string]*subscriber{"anonymous": anon, "other token": other} {
		if ev := s.next(); ev.Data != "marker" {
			t.Errorf("%s watcher got %q before the marker", name, ev.Data)
		}
	}
}

// TestMercureSubscriptionsTwoTabs: one token on two connections is two
// subscribers, each with its own subscription, event and API resource;
// one tab closing ends its own subscription only.
func TestMercureSubscriptionsTwoTabs(t *testing.T) {
	c := startCaddy(t, mercureSubsSite)
	hub := c.base + "/.well-known/mercure"
	watcherTok := subsWatcherToken(t, hub)
	w := subscribe(t, client, subsWatchURL(hub), "Authorization: Bearer "+watcherTok).ready()
	for range 2 { // its own
		subsEvent(t, w)
	}
	const book = "https://example.com/books/2"
	tok := payloadToken(t, hub, "alice")
	tab1 := subscribe(t, client, hub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+tok).ready()
	d1 := subsEvent(t, w)
	tab2 := subscribe(t, client, hub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+tok).ready()
	d2 := subsEvent(t, w)
	if d1.Match != book || d2.Match != book || !d1.Active || !d2.Active {
		t.Fatalf("the tabs' events: %+v %+v", d1, d2)
	}
	if d1.Subscriber == d2.Subscriber || d1.ID == d2.ID {
		t.Fatalf("two tabs with one token share the subscriber %q", d1.Subscriber)
	}
	for _, d := range []subsDoc{d1, d2} {
		status, _, body := subsGet(t, c.base+d.ID, watcherTok)
		mustStatus(t, "a tab's subscription", status, http.StatusOK, body)
	}
	tab1.close()
	if d := subsEvent(t, w); d.ID != d1.ID || d.Active {
		t.Fatalf("after tab 1 closed: %+v, want its subscription ended", d)
	}
	status, _, body := subsGet(t, c.base+d2.ID, watcherTok)
	mustStatus(t, "tab 2's subscription after tab 1 closed", status, http.StatusOK, body)
	tab2.close()
	if d := subsEvent(t, w); d.ID != d2.ID || d.Active {
		t.Fatalf("after tab 2 closed: %+v", d)
	}
	list, _ := subsList(t, hub, hub+"/subscriptions", watcherTok)
	for _, s := range list.Subscriptions {
		if s.Match == book {
			t.Errorf("still listed: %+v", s)
		}
	}
}

// TestMercureSubscriptionsCompat: in compatibility mode the events and the
// API's 0.x paths are Mercure 0.24.2's: JSON-LD, the 0.x topics, no event
// type, the cursor in the body; the 1.0 per-matcher paths answer too.
func TestMercureSubscriptionsCompat(t *testing.T) {
	c := startCaddy(t, mercureSubsCompatSite)
	hub := c.base + "/.well-known/mercure"
	legacyTemplate := "/.well-known/mercure/subscriptions/{topic}/{subscriber}"
	legacyTok := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{
		"subscribe": []string{legacyTemplate, "/.well-known/mercure/subscriptions", "/.well-known/mercure/subscriptions/{topic}",
			"/.well-known/mercure/subscriptions/exact/{match}"}}})
	watcher := subscribe(t, client, hub+"?topic="+url.QueryEscape(legacyTemplate), "Authorization: Bearer "+legacyTok).ready()
	next := func() legacySubsDoc {
		t.Helper()
		ev := watcher.next()
		if ev.Type != "" {
			t.Errorf("0.x subscription event of type %q", ev.Type)
		}
		var d legacySubsDoc
		if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
			t.Fatalf("%s: %v", ev.Data, err)
		}
		if strings.Contains(ev.Data, "match_type") || d.LastEventID != "" {
			t.Errorf("0.x event %s", ev.Data)
		}
		return d
	}
	own := next()
	if own.Topic != legacyTemplate || own.Type != "Subscription" || own.Context != "https://mercure.rocks/" {
		t.Errorf("the watcher's own subscription: %+v", own)
	}
	const book = "https://example.com/books/9"
	aliceTok := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"sub": "alice", "mercure": map[string]any{
		"subscribe": []string{book}, "payload": map[string]any{"name": "alice"}}})
	alice := subscribe(t, client, hub+"?topic="+url.QueryEscape(book), "Authorization: Bearer "+aliceTok).ready()
	d := next()
	wantID := "/.well-known/mercure/subscriptions/" + url.QueryEscape(book) + "/" + url.QueryEscape(d.Subscriber)
	if d.ID != wantID || d.Type != "Subscription" || d.Topic != book || !d.Active || string(d.Payload) != `{"name":"alice"}` ||
		!strings.HasPrefix(d.Subscriber, "urn:uuid:") || d.Context != "https://mercure.rocks/" {
		t.Errorf("alice's subscription: %+v, want id %s", d, wantID)
	}

	status, hdr, body := subsGet(t, hub+"/subscriptions", legacyTok)
	mustStatus(t, "0.x collection", status, http.StatusOK, body)
	var all legacySubsCollection
	_ = json.Unmarshal(body, &all)
	if hdr.Get("Content-Type") != "application/ld+json" || all.Context != "https://mercure.rocks/" || all.Type != "Subscriptions" ||
		all.ID != "/.well-known/mercure/subscriptions" || !strings.HasPrefix(all.LastEventID, "#") || len(all.Subscriptions) != 2 ||
		hdr.Get("Link") != "" {
		t.Errorf("0.x collection (%s, Link %q): %s", hdr.Get("Content-Type"), hdr.Get("Link"), body)
	}
	for _, s := range all.Subscriptions {
		if s.Context != "" || s.Type != "Subscription" {
			t.Errorf("0.x collection member %+v", s)
		}
	}
	status, _, body = subsGet(t, c.base+wantID, legacyTok)
	mustStatus(t, "0.x single", status, http.StatusOK, body)
	var one legacySubsDoc
	_ = json.Unmarshal(body, &one)
	if one.ID != wantID || one.Context != "https://mercure.rocks/" || one.LastEventID != all.LastEventID || one.Topic != book {
		t.Errorf("0.x single: %s", body)
	}
	// Segments encoded as the hub encodes them: the 0.x templates'
	// simple variables match unreserved and percent-encoded bytes only.
	status, _, body = subsGet(t, hub+"/subscriptions/"+url.QueryEscape(book), legacyTok)
	mustStatus(t, "0.x per topic", status, http.StatusOK, body)
	var perTopic legacySubsCollection
	_ = json.Unmarshal(body, &perTopic)
	if len(perTopic.Subscriptions) != 1 || perTopic.Subscriptions[0].ID != wantID {
		t.Errorf("0.x per topic: %s", body)
	}
	// The 1.0 per-matcher path, in the 1.0 shape; its members are
	// authorized by their 1.0 topics, which this token does not cover.
	if l, _ := subsList(t, hub, hub+"/subscriptions/exact/"+url.QueryEscape(book), legacyTok); len(l.Subscriptions) != 0 {
		t.Errorf("1.0 per-matcher collection served subscriptions the token cannot read as events: %+v", l)
	}
	wide := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"*"}}})
	if l, _ := subsList(t, hub, hub+"/subscriptions/exact/"+url.QueryEscape(book), wide); len(l.Subscriptions) != 1 ||
		l.Subscriptions[0].MatchType != "exact" || l.Subscriptions[0].Match != book || string(l.Subscriptions[0].Payload) != `{"name":"alice"}` {
		t.Errorf("1.0 per-matcher collection in compatibility mode: %+v", l)
	}

	alice.close()
	if d := next(); d.ID != wantID || d.Active {
		t.Errorf("after alice left: %+v", d)
	}
}

// TestMercureSubscriptionsRedis: two Caddies on one Redis share the
// registry and the events; a killed instance's subscriptions end within
// the TTL, with events.
func TestMercureSubscriptionsRedis(t *testing.T) {
	_, _, a, b := twoInstancesOf(t, false, mercureSubsSite)
	aHub, bHub := a.base+"/.well-known/mercure", b.base+"/.well-known/mercure"
	watcherTok := subsWatcherToken(t, aHub)
	watcher := subscribe(t, client, aHub+"?match_urlpattern="+url.QueryEscape(subsWatchPattern), "Authorization: Bearer "+watcherTok).ready()
	subsEvent(t, watcher) // its own

	const book = "https://example.com/books/3"
	onB := subscribe(t, client, bHub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+payloadToken(t, bHub, "alice")).ready()
	d := subsEvent(t, watcher)
	if d.Match != book || d.MatchType != "exact" || !d.Active || string(d.Payload) != `{"name":"alice"}` {
		t.Fatalf("A's watcher: %+v, want alice's subscription on B", d)
	}
	listed := func(p *caddyProc, id string) bool {
		tok := subsWatcherToken(t, p.base+"/.well-known/mercure")
		status, _, body := subsGet(t, p.base+id, tok)
		return status == http.StatusOK && strings.Contains(string(body), `"alice"`)
	}
	if !listed(a, d.ID) || !listed(b, d.ID) {
		t.Fatalf("alice's subscription on B not listed by both instances")
	}
	// Alice also connects on A: another subscriber, which killing B
	// leaves active.
	onA := subscribe(t, client, aHub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+payloadToken(t, aHub, "alice")).ready()
	dA := subsEvent(t, watcher)
	if dA.Subscriber == d.Subscriber || dA.Match != book {
		t.Fatalf("alice on A: %+v", dA)
	}
	start := time.Now()
	b.kill()
	_ = onB
	// B's subscription ends within the TTL (1s) plus a heartbeat;
	// A's stays.
	if e := subsEvent(t, watcher); e.ID != d.ID || e.Active {
		t.Fatalf("after B was killed: %+v, want alice's subscription on B ended", e)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("B's subscriptions ended %v after the kill; the TTL is 1s", took)
	}
	status, _, body := subsGet(t, a.base+d.ID, watcherTok)
	mustStatus(t, "B's subscription after the kill", status, http.StatusNotFound, body)
	if !listed(a, dA.ID) {
		t.Errorf("alice's subscription on A is gone")
	}
	onA.close()
	if e := subsEvent(t, watcher); e.ID != dA.ID || e.Active {
		t.Fatalf("after alice left A: %+v", e)
	}
	if listed(a, dA.ID) {
		t.Errorf("alice's subscription listed after her connection ended")
	}
}

// TestMercureSubscriptionsFloodKeepsUpdates: subscription events have a
// ring of their own, so connections cannot push the updates out of the
// replay ring.
func TestMercureSubscriptionsFloodKeepsUpdates(t *testing.T) {
	c := startCaddy(t, strings.Replace(mercureSubsSite, "subscriptions_ttl 1s", "replay 2", 1))
	hub := c.base + "/.well-known/mercure"
	pub := mercureCLIToken(t, mercurePubKey, "https://issuer.example", hub, "*")
	id := mustMercurePublish(t, hub, pub, update("urn:kept", "kept"))
	for i := range 5 {
		s := subscribe(t, client, hub+"?match=urn:flood-"+itoa(i)).ready()
		s.close()
	}
	late := subscribe(t, client, hub+"?match=urn:kept&last_event_id=earliest").ready()
	if ev := late.next(); ev.Data != "kept" || ev.LastEventID != id {
		t.Errorf("after 10 subscription events, earliest replayed %+v, want the update %s", ev, id)
	}
}

// TestMercureSubscriptionsRedisOutage: a subscriber that connects while its
// instance cannot reach Redis gets its stream at once; its subscription is
// registered, with its event, once Redis is back.
func TestMercureSubscriptionsRedisOutage(t *testing.T) {
	r := startRedis(t, false)
	prefix := redisPrefix()
	cutter := startRedisCutter(t, r, false)
	a := startCaddyWith(t, redisGlobal(r, prefix), mercureSubsSite)
	b := startCaddyWith(t, redisGlobalURL(cutter.url(), prefix), mercureSubsSite)
	redisWaitConnected(t, a, "default", true)
	redisWaitConnected(t, b, "default", true)
	aHub := a.base + "/.well-known/mercure"
	watcherTok := subsWatcherToken(t, aHub)
	watcher := subscribe(t, client, aHub+"?match_urlpattern="+url.QueryEscape(subsWatchPattern), "Authorization: Bearer "+watcherTok).ready()
	subsEvent(t, watcher) // its own

	cutter.setCut(true)
	redisWaitConnected(t, b, "default", false)
	start := time.Now()
	onB := subscribe(t, client, b.base+"/.well-known/mercure?match=urn:during-outage").ready()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the stream opened %v after the request: the registry held it", took)
	}
	cutter.setCut(false)
	d := subsEvent(t, watcher)
	if d.Match != "urn:during-outage" || !d.Active {
		t.Fatalf("after Redis came back, A's watcher got %+v, want the subscription made during the outage", d)
	}
	status, _, body := subsGet(t, a.base+d.ID, watcherTok)
	mustStatus(t, "the subscription made during the outage, on A", status, http.StatusOK, body)
	onB.close()
	if d2 := subsEvent(t, watcher); d2.ID != d.ID || d2.Active {
		t.Fatalf("after it left: %+v", d2)
	}
}

// subsMatcher is one subscribe matcher of a test token: its text and its
// 1.0 match_type ("exact" or "urlpattern").
type subsMatcher struct{ match, matchType string }

// subsToken signs a subscriber access token with one subscribe detail per
// matcher group. Every detail is written twice: in the 1.0 shape
// (https://mercure.rocks/authorization-detail, match_type) and in the
// shape of the early draft this hub first spoke ("mercure", matchType):
// each parser skips the entries of the other type (RFC 9396: details of
// another type are for another resource server), so the same tests hold
// while the token parser moves from one to the other. iss and aud are the
// 1.0 required claims. This is the one place the test tokens are shaped.
func subsToken(t *testing.T, hubURL, sub string, details ...subsDetail) string {
	t.Helper()
	var modern, early []any
	for _, d := range details {
		var mt, et []any
		for _, m := range d.matchers {
			typ := m.matchType
			if typ == "" {
				typ = "exact"
			}
			mt = append(mt, map[string]any{"match": m.match, "match_type": typ})
			et = append(et, map[string]any{"match": m.match, "matchType": map[string]string{"exact": "Exact", "urlpattern": "URLPattern"}[typ]})
		}
		md := map[string]any{"type": "https://mercure.rocks/authorization-detail", "actions": []string{"subscribe"}, "topics": mt}
		ed := map[string]any{"type": "mercure", "actions": []string{"subscribe"}, "topics": et}
		if d.payload != nil {
			md["payload"], ed["payload"] = d.payload, d.payload
		}
		modern, early = append(modern, md), append(early, ed)
	}
	claims := jwt.MapClaims{"iss": "https://issuer.example", "aud": hubURL, "authorization_details": append(modern, early...)}
	if sub != "" {
		claims["sub"] = sub
	}
	return mercureToken(t, mercureSubKey, true, claims)
}

// subsDetail is one subscribe authorization detail of a test token.
type subsDetail struct {
	matchers []subsMatcher
	payload  any
}

// TestMercureSubscriptionsAPIServesOnlyWhatTheTokenReads is hole 5: the
// API authorized the request's path and then served every subscription it
// selected, so a token allowed the per-matcher collection and its owner's
// own subscription listed another subscriber's, with its payload. Each
// subscription served must itself be a topic the token may read.
func TestMercureSubscriptionsAPIServesOnlyWhatTheTokenReads(t *testing.T) {
	c := startCaddy(t, mercureSubsSite)
	hub := c.base + "/.well-known/mercure"
	watcher := subscribe(t, client, hub+"?match_urlpattern="+url.QueryEscape(subsWatchPattern),
		"Authorization: Bearer "+subsWatcherToken(t, hub)).ready()
	subsEvent(t, watcher) // its own

	const book = "https://example.com/books/5"
	holder := func(name string) subsDoc {
		tok := subsToken(t, hub, "https://example.com/users/"+name, subsDetail{
			matchers: []subsMatcher{{match: book}}, payload: map[string]any{"name": name}})
		subscribe(t, client, hub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+tok).ready()
		d := subsEvent(t, watcher)
		if d.Match != book || !d.Active {
			t.Fatalf("%s's subscription event: %+v", name, d)
		}
		return d
	}
	alice, bob := holder("alice"), holder("bob")
	if alice.ID == bob.ID {
		t.Fatalf("alice and bob share the subscription %s", alice.ID)
	}
	// The per-matcher collection is the subscription's id without its
	// last segment.
	perMatch := alice.ID[:strings.LastIndexByte(alice.ID, '/')]
	if bob.ID[:strings.LastIndexByte(bob.ID, '/')] != perMatch {
		t.Fatalf("alice's %s and bob's %s are not in one collection", alice.ID, bob.ID)
	}
	aliceOnly := subsToken(t, hub, "", subsDetail{matchers: []subsMatcher{{match: perMatch}, {match: alice.ID}}})

	status, _, body := subsGet(t, c.base+perMatch, aliceOnly)
	mustStatus(t, "the collection, with a token for alice's subscription", status, http.StatusOK, body)
	if strings.Contains(string(body), `"bob"`) || strings.Contains(string(body), url.PathEscape(bob.Subscriber)) {
		t.Errorf("a token for alice's subscription was served bob's: %s", body)
	}
	if !strings.Contains(string(body), `"alice"`) {
		t.Errorf("alice's own subscription missing: %s", body)
	}
	status, _, body = subsGet(t, c.base+bob.ID, aliceOnly)
	mustStatus(t, "bob's subscription, with a token for alice's", status, http.StatusForbidden, body)
}

// TestMercureSubscriptionsHubPath: a hub served at /hub names its events
// and serves its API under /hub, and its Link names /hub.
func TestMercureSubscriptionsHubPath(t *testing.T) {
	c := startCaddy(t, strings.Replace(mercureSubsSite, "sse_mercure /.well-known/mercure* {", "sse_mercure /hub* {", 1))
	hub := c.base + "/hub"
	tok := subsToken(t, hub, "", subsDetail{matchers: []subsMatcher{
		{match: "/hub/subscriptions"}, {match: "/hub/subscriptions/*", matchType: "urlpattern"}}})
	w := subscribe(t, client, hub+"?match_urlpattern="+url.QueryEscape("/hub/subscriptions/*"), "Authorization: Bearer "+tok).ready()
	d := subsEvent(t, w) // its own
	want := "/hub/subscriptions/urlpattern/" + url.QueryEscape("/hub/subscriptions/*") + "/" + url.QueryEscape(d.Subscriber)
	if d.ID != want || d.MatchType != "urlpattern" || d.Match != "/hub/subscriptions/*" {
		t.Fatalf("event %+v, want id %s", d, want)
	}
	all, _ := subsList(t, hub, hub+"/subscriptions", tok)
	if all.ID != "/hub/subscriptions" || len(all.Subscriptions) != 1 || all.Subscriptions[0].ID != want {
		t.Errorf("collection %+v", all)
	}
}
