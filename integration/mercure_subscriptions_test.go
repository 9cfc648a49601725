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
)

// mercureSubsSite is a hub with subscription events and the API; its
// matcher covers the API's paths under /.well-known/mercure/.
const mercureSubsSite = `:{PORT} {
	sse_mercure /.well-known/mercure* {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		protocol_version_compatibility 8
		anonymous
		subscriptions
		subscriptions_ttl 1s
		heartbeat 200ms
	}
}
`

// subsDoc is a subscription's JSON-LD document.
type subsDoc struct {
	Context     string          `json:"@context"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	MatchType   string          `json:"matchType"`
	Match       string          `json:"match"`
	Topic       string          `json:"topic"`
	Subscriber  string          `json:"subscriber"`
	Active      bool            `json:"active"`
	Payload     json.RawMessage `json:"payload"`
	LastEventID string          `json:"lastEventID"`
}

type subsCollection struct {
	Context       string    `json:"@context"`
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	LastEventID   string    `json:"lastEventID"`
	Subscriptions []subsDoc `json:"subscriptions"`
}

// subsWatcherToken may read every subscription event and API resource.
func subsWatcherToken(t *testing.T) string {
	return mercureToken(t, mercureSubKey, true, jwt.MapClaims{"authorization_details": []any{map[string]any{
		"type": mercureDetailType, "actions": []string{"subscribe"},
		"topics": []any{
			map[string]any{"match": "/.well-known/mercure/subscriptions"},
			map[string]any{"match": "/.well-known/mercure/subscriptions/*", "match_type": "urlpattern"},
			map[string]any{"match": "urn:marker"},
		},
	}}})
}

// subsEvent reads the next event of s as a subscription document.
func subsEvent(t *testing.T, s *subscriber) subsDoc {
	t.Helper()
	ev := s.next()
	var d subsDoc
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
		t.Fatalf("event %q is not a subscription document: %v", ev.Data, err)
	}
	return d
}

// subsGet GETs an API URL and returns the status and body.
func subsGet(t *testing.T, u, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func subsList(t *testing.T, u, token string) subsCollection {
	t.Helper()
	status, hdr, body := subsGet(t, u, token)
	mustStatus(t, "GET "+u, status, http.StatusOK, body)
	if ct := hdr.Get("Content-Type"); ct != "application/ld+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var c subsCollection
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return c
}

const subsAlice = "https://example.com/users/alice"

// aliceToken subscribes to book 1 as alice, with a payload for it.
func aliceToken(t *testing.T) string {
	return mercureToken(t, mercureSubKey, true, jwt.MapClaims{"sub": subsAlice, "authorization_details": []any{map[string]any{
		"type": mercureDetailType, "actions": []string{"subscribe"},
		"topics":  []any{map[string]any{"match": "https://example.com/books/:id", "match_type": "urlpattern"}},
		"payload": map[string]any{"name": "alice"},
	}}})
}

// TestMercureSubscriptions: events for authorized watchers only, with
// subscriber and payload from the token; the API's three shapes and its
// refusals; lastEventID resumes without a gap.
func TestMercureSubscriptions(t *testing.T) {
	c := startCaddy(t, mercureSubsSite)
	hub := c.base + "/.well-known/mercure"
	pub := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	watcherTok := subsWatcherToken(t)
	watchURL := hub + "?match_urlpattern=" + url.QueryEscape("/.well-known/mercure/subscriptions/*") + "&match=urn:marker"
	watcher := subscribe(t, client, watchURL, "Authorization: Bearer "+watcherTok).ready()
	// The watchers that must not see the events: anonymous, and a token
	// that allows other topics only.
	anon := subscribe(t, client, watchURL).ready()
	other := subscribe(t, client, watchURL, "Authorization: Bearer "+aliceToken(t)).ready()
	// A 0.x watcher: its template selects the events' alternate topic.
	legacyTemplate := "/.well-known/mercure/subscriptions/{topic}/{subscriber}"
	legacyTok := mercureToken(t, mercureSubKey, false, jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{legacyTemplate}}})
	legacy := subscribe(t, client, hub+"?topic="+url.QueryEscape(legacyTemplate), "Authorization: Bearer "+legacyTok).ready()
	if d := subsEvent(t, legacy); d.MatchType != "URITemplate" || d.Match != legacyTemplate {
		t.Errorf("0.x watcher: its own subscription %+v", d)
	}
	// The watchers' own subscriptions were announced first; skip them.
	for range 2 { // watcher's: its two selectors
		subsEvent(t, watcher)
	}
	for range 2 + 2 + 1 { // anon's, other's (two selectors each), legacy's
		subsEvent(t, watcher)
	}

	const book = "https://example.com/books/1"
	alice := subscribe(t, client, hub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+aliceToken(t)).ready()
	wantID := "/.well-known/mercure/subscriptions/Exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/https%3A%2F%2Fexample.com%2Fusers%2Falice"
	check := func(who string, d subsDoc, active bool) {
		t.Helper()
		if d.ID != wantID || d.Type != "Subscription" || d.MatchType != "Exact" || d.Match != book || d.Topic != book ||
			d.Subscriber != subsAlice || d.Active != active || string(d.Payload) != `{"name":"alice"}` || d.Context != "https://mercure.rocks/" {
			t.Errorf("%s: %+v, want alice's subscription, active %v", who, d, active)
		}
	}
	check("watcher", subsEvent(t, watcher), true)
	check("0.x watcher", subsEvent(t, legacy), true)

	t.Run("API", func(t *testing.T) {
		all := subsList(t, hub+"/subscriptions", watcherTok)
		if all.ID != "/.well-known/mercure/subscriptions" || all.Type != "Subscriptions" || all.Context != "https://mercure.rocks/" ||
			!strings.HasPrefix(all.LastEventID, "#") || len(all.Subscriptions) != 8 {
			t.Errorf("collection: %+v", all)
		}
		perMatch := subsList(t, hub+"/subscriptions/Exact/"+url.PathEscape(book), watcherTok)
		if len(perMatch.Subscriptions) != 1 || perMatch.Subscriptions[0].ID != wantID {
			t.Errorf("per matcher: %+v", perMatch)
		}
		status, _, body := subsGet(t, c.base+wantID, watcherTok)
		mustStatus(t, "single", status, http.StatusOK, body)
		var one subsDoc
		_ = json.Unmarshal(body, &one)
		check("single", one, true)
		if one.LastEventID != all.LastEventID {
			t.Errorf("single lastEventID %q, collection's %q (nothing happened between)", one.LastEventID, all.LastEventID)
		}
		// 0.x shapes.
		legacyOne := subsList(t, hub+"/subscriptions/"+url.PathEscape(book), watcherTok)
		if len(legacyOne.Subscriptions) != 1 {
			t.Errorf("0.x per topic: %+v", legacyOne)
		}
		status, _, body = subsGet(t, hub+"/subscriptions/"+url.PathEscape(book)+"/"+url.PathEscape(subsAlice), watcherTok)
		mustStatus(t, "0.x single", status, http.StatusOK, body)

		// Refusals.
		status, _, body = subsGet(t, hub+"/subscriptions", "")
		mustStatus(t, "no token", status, http.StatusUnauthorized, body)
		status, _, body = subsGet(t, hub+"/subscriptions", aliceToken(t))
		mustStatus(t, "a token for other topics", status, http.StatusForbidden, body)
		// A token for one subscription reads it, not the collection.
		narrow := mercureToken(t, mercureSubKey, true, jwt.MapClaims{"authorization_details": []any{map[string]any{
			"type": mercureDetailType, "actions": []string{"subscribe"}, "topics": []any{map[string]any{"match": wantID}},
		}}})
		status, _, body = subsGet(t, c.base+wantID, narrow)
		mustStatus(t, "narrow token, its subscription", status, http.StatusOK, body)
		status, _, body = subsGet(t, hub+"/subscriptions", narrow)
		mustStatus(t, "narrow token, the collection", status, http.StatusForbidden, body)
		status, _, body = subsGet(t, hub+"/subscriptions/Exact/nope/nobody", watcherTok)
		mustStatus(t, "unknown subscription", status, http.StatusNotFound, body)
		status, _, body = subsGet(t, hub+"/subscriptions/Exact/a/b/c", watcherTok)
		mustStatus(t, "no such resource", status, http.StatusNotFound, body)
		status, body2, _ := mercurePublish(t, hub+"/subscriptions", pub, update("urn:x", "x"))
		mustStatus(t, "POST", status, http.StatusMethodNotAllowed, []byte(body2))
	})

	t.Run("lastEventID resumes the events without a gap", func(t *testing.T) {
		before := subsList(t, hub+"/subscriptions", watcherTok)
		bob := subscribe(t, client, hub+"?match=urn:bob").ready() // anonymous: a urn:uuid
		resumed := subscribe(t, client, watchURL+"&lastEventID="+url.QueryEscape(before.LastEventID),
			"Authorization: Bearer "+watcherTok).ready()
		d := subsEvent(t, resumed)
		if d.Match != "urn:bob" || !d.Active || !strings.HasPrefix(d.Subscriber, "urn:uuid:") {
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
		// The 0.x watcher's template selects all of them too: bob's
		// two, the resumed watcher's two.
		for range 4 {
			subsEvent(t, legacy)
		}
		resumed.close()
		for _, w := range []*subscriber{watcher, legacy} {
			for range 2 {
				if d := subsEvent(t, w); d.Active {
					t.Errorf("after the resumed watcher left: %+v", d)
				}
			}
		}
	})

	alice.close()
	check("watcher, alice gone", subsEvent(t, watcher), false)
	check("0.x watcher, alice gone", subsEvent(t, legacy), false)
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

// TestMercureSubscriptionsSameSubject: one sub connected twice with one
// selector is one subscription, active until its last connection ends.
func TestMercureSubscriptionsSameSubject(t *testing.T) {
	c := startCaddy(t, mercureSubsSite)
	hub := c.base + "/.well-known/mercure"
	watcherTok := subsWatcherToken(t)
	w2 := subscribe(t, client, hub+"?match_urlpattern="+url.QueryEscape("/.well-known/mercure/subscriptions/*")+"&match=urn:marker",
		"Authorization: Bearer "+watcherTok).ready()
	for range 2 { // its own
		subsEvent(t, w2)
	}
	const book = "https://example.com/books/2"
	first := subscribe(t, client, hub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+aliceToken(t)).ready()
	if d := subsEvent(t, w2); d.Match != book || !d.Active {
		t.Fatalf("first connection: %+v", d)
	}
	second := subscribe(t, client, hub+"?match="+url.QueryEscape(book), "Authorization: Bearer "+aliceToken(t)).ready()
	first.close()
	second.close()
	if d := subsEvent(t, w2); d.Match != book || d.Active {
		t.Fatalf("after both left: %+v (a second active:true or an early active:false)", d)
	}
	list := subsList(t, hub+"/subscriptions", watcherTok)
	for _, s := range list.Subscriptions {
		if s.Match == book {
			t.Errorf("still listed: %+v", s)
		}
	}
}

// TestMercureSubscriptionsRedis: two Caddies on one Redis share the
// registry and the events; a killed instance's subscriptions end within
// the TTL, with events.
func TestMercureSubscriptionsRedis(t *testing.T) {
	_, _, a, b := twoInstancesOf(t, false, mercureSubsSite)
	watcherTok := subsWatcherToken(t)
	watcher := subscribe(t, client, a.base+"/.well-known/mercure?match_urlpattern="+
		url.QueryEscape("/.well-known/mercure/subscriptions/*"), "Authorization: Bearer "+watcherTok).ready()
	subsEvent(t, watcher) // its own

	const book = "https://example.com/books/3"
	onB := subscribe(t, client, b.base+"/.well-known/mercure?match="+url.QueryEscape(book), "Authorization: Bearer "+aliceToken(t)).ready()
	d := subsEvent(t, watcher)
	if d.Match != book || d.Subscriber != subsAlice || !d.Active || string(d.Payload) != `{"name":"alice"}` {
		t.Fatalf("A's watcher: %+v, want alice's subscription on B", d)
	}
	listed := func(p *caddyProc) bool {
		status, _, body := subsGet(t, p.base+d.ID, watcherTok)
		return status == http.StatusOK && strings.Contains(string(body), subsAlice)
	}
	if !listed(a) || !listed(b) {
		t.Fatalf("alice's subscription on B not listed by both instances")
	}
	// Alice also connects on A: killing B leaves her subscription active.
	onA := subscribe(t, client, a.base+"/.well-known/mercure?match="+url.QueryEscape(book), "Authorization: Bearer "+aliceToken(t)).ready()
	anonB := subscribe(t, client, b.base+"/.well-known/mercure?match=urn:anon-on-b").ready()
	anonDoc := subsEvent(t, watcher)
	if anonDoc.Match != "urn:anon-on-b" || !anonDoc.Active {
		t.Fatalf("A's watcher: %+v, want the anonymous subscription on B", anonDoc)
	}
	start := time.Now()
	b.kill()
	_, _ = onB, anonB
	// B's anonymous subscription ends within the TTL (1s) plus a
	// heartbeat; alice's stays, held by A.
	if d := subsEvent(t, watcher); d.ID != anonDoc.ID || d.Active {
		t.Fatalf("after B was killed: %+v, want the anonymous subscription ended", d)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("B's subscriptions ended %v after the kill; the TTL is 1s", took)
	}
	status, _, body := subsGet(t, a.base+anonDoc.ID, watcherTok)
	mustStatus(t, "B's subscription after the kill", status, http.StatusNotFound, body)
	if !listed(a) {
		t.Errorf("alice's subscription, still held on A, is gone")
	}
	onA.close()
	if d := subsEvent(t, watcher); d.Match != book || d.Active {
		t.Fatalf("after alice left A: %+v", d)
	}
	if listed(a) {
		t.Errorf("alice's subscription listed after her last connection ended")
	}
}

// TestMercureSubscriptionsFloodKeepsUpdates: subscription events have a
// ring of their own, so connections cannot push the updates out of the
// replay ring.
func TestMercureSubscriptionsFloodKeepsUpdates(t *testing.T) {
	c := startCaddy(t, strings.Replace(mercureSubsSite, "subscriptions_ttl 1s", "replay 2", 1))
	hub := c.base + "/.well-known/mercure"
	pub := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})
	id := mustMercurePublish(t, hub, pub, update("urn:kept", "kept"))
	for i := range 5 {
		s := subscribe(t, client, hub+"?match=urn:flood-"+itoa(i)).ready()
		s.close()
	}
	late := subscribe(t, client, hub+"?match=urn:kept&lastEventID=earliest").ready()
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
	watcherTok := subsWatcherToken(t)
	watcher := subscribe(t, client, a.base+"/.well-known/mercure?match_urlpattern="+
		url.QueryEscape("/.well-known/mercure/subscriptions/*"), "Authorization: Bearer "+watcherTok).ready()
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
