package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The recipe (docs/) "The app decides who subscribes": the app behind
// reverse_proxy (or forward_auth) checks its own session cookie and answers
// which topics this browser may have; Caddy serves exactly those.

// session is what the app knows about one logged-in browser.
type session struct {
	user   string // answered as X-Sse-Topic and X-Sse-User ("" answers none)
	grants string // answered as X-Sse-Topics ("" answers none)
}

// sessionApp is the upstream app of the recipe: a real HTTP server on
// loopback that authorizes by its session cookie and records what reached it.
type sessionApp struct {
	srv       *httptest.Server
	sessions  map[string]session // by cookie value
	openConns atomic.Int64       // TCP connections from Caddy open now

	mu   sync.Mutex
	seen []*http.Request // clones of the requests it answered
}

// appBodyParam in a subscribe URL makes the app answer with a body, as a
// careless app would; without it the app answers with an empty one.
const appBodyParam = "appbody"

// appBody is the body the app answers with appBodyParam.
const appBody = "APP-BODY: authorized, stream follows"

func startSessionApp(t *testing.T) *sessionApp {
	t.Helper()
	a := &sessionApp{sessions: map[string]session{
		"alice-cookie": {user: "alice", grants: "user/alice, org/7"},
		"bob-cookie":   {user: "bob", grants: "user/bob"},
		// logged in, but the app grants nothing (answers 200 without the headers)
		"carol-cookie": {},
		// the app grants a topic the route does not declare: its bug
		"mallory-cookie": {user: "mallory", grants: "user/mallory,admin/all"},
	}}
	a.srv = httptest.NewUnstartedServer(a)
	a.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			a.openConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			a.openConns.Add(-1)
		}
	}
	a.srv.Start()
	t.Cleanup(a.srv.Close)
	return a
}

func (a *sessionApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Clone(r.Context()))
	a.mu.Unlock()
	c, err := r.Cookie("session")
	var s session
	ok := err == nil
	if ok {
		s, ok = a.sessions[c.Value]
	}
	if !ok {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	if s.user != "" {
		w.Header().Set("X-Sse-Topic", s.user)
		w.Header().Set("X-Sse-User", s.user)
	}
	if s.grants != "" {
		w.Header().Set("X-Sse-Topics", s.grants)
	}
	if r.URL.Query().Has(appBodyParam) {
		_, _ = io.WriteString(w, appBody)
	}
}

// last returns the last request the app answered.
func (a *sessionApp) last(t *testing.T) *http.Request {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		t.Fatal("no request reached the app")
	}
	return a.seen[len(a.seen)-1]
}

func (a *sessionApp) port() string { return strings.TrimPrefix(a.srv.URL, "http://127.0.0.1:") }

// subscribeStatus opens a subscription and returns its status and, for a
// refusal, its body.
func subscribeStatus(t *testing.T, c *http.Client, url string, headers ...string) (int, string) {
	t.Helper()
	s := subscribe(t, c, url, headers...)
	defer s.close()
	if s.resp.StatusCode == http.StatusOK {
		return http.StatusOK, ""
	}
	// The subscriber's reader consumes the body; it keeps the raw bytes.
	select {
	case <-s.closed:
	case <-testCtx(t).Done():
		t.Fatalf("%s: the %d answer's body did not end", url, s.resp.StatusCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resp.StatusCode, s.raw.String()
}

// awaitOnly publishes a marker to want and to every topic in others, and
// checks that s receives want's marker and nothing of the others: each
// other marker is published before want's, so had it been delivered it
// would arrive first.
func awaitOnly(t *testing.T, s *subscriber, publishURL, want string, others ...string) {
	t.Helper()
	for _, o := range others {
		publishData(t, publishURL, o, "for "+o)
	}
	publishData(t, publishURL, want, "for "+want)
	if ev := s.next(); ev.Data != "for "+want {
		t.Fatalf("got %q (id %s), want the event of %s only", ev.Data, ev.LastEventID, want)
	}
}

// The recipe exactly as a new user writes it: reverse_proxy to the app,
// handle_response on its 200, the topic from the app's answer header.
func TestRecipeAppDecidesTopicThroughReverseProxy(t *testing.T) {
	t.Parallel()
	app := startSessionApp(t)
	c := startCaddy(t, strings.ReplaceAll(`
http://127.0.0.1:{PORT} {
	handle /events {
		reverse_proxy 127.0.0.1:{APP} {
			@authorized status 200
			handle_response @authorized {
				sse {
					topic user/{rp.header.X-Sse-Topic}
				}
			}
		}
	}
	sse_publish /publish
}

https://127.0.0.1:{PORT2} {
	tls {CERT} {KEY}
	handle /events {
		reverse_proxy 127.0.0.1:{APP} {
			@authorized status 200
			handle_response @authorized {
				sse {
					topic user/{rp.header.X-Sse-Topic}
				}
			}
		}
	}
}
`, "{APP}", app.port()))
	pub := c.base + "/publish"
	alice := "Cookie: session=alice-cookie"

	t.Run("the browser gets exactly its topic", func(t *testing.T) {
		s := subscribe(t, client, c.base+"/events", alice).ready()
		if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		awaitOnly(t, s, pub, "user/alice", "user/bob")

		// What reached the app: the browser's own GET, cookie and all.
		r := app.last(t)
		if r.Method != http.MethodGet || r.URL.Path != "/events" || r.Header.Get("Cookie") != "session=alice-cookie" {
			t.Fatalf("the app saw %s %s with Cookie %q", r.Method, r.URL, r.Header.Get("Cookie"))
		}
		if r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Fatalf("the app saw X-Forwarded-For %q, want the browser's address", r.Header.Get("X-Forwarded-For"))
		}
	})

	t.Run("the resume point reaches the app and the hub", func(t *testing.T) {
		first := publishData(t, pub, "user/alice", "missed 1")
		publishData(t, pub, "user/alice", "missed 2")
		s := subscribe(t, client, c.base+"/events", alice, "Last-Event-ID: "+first.ID).ready()
		if got := app.last(t).Header.Get("Last-Event-ID"); got != first.ID {
			t.Fatalf("the app saw Last-Event-ID %q, want %q", got, first.ID)
		}
		if ev := s.next(); ev.Data != "missed 2" {
			t.Fatalf("resumed with %q, want the event after the resume point", ev.Data)
		}
	})

	t.Run("no session is the app's 401, not a stream", func(t *testing.T) {
		status, body := subscribeStatus(t, client, c.base+"/events")
		if status != http.StatusUnauthorized || !strings.Contains(body, "log in first") {
			t.Fatalf("status %d %q, want the app's 401", status, body)
		}
	})

	t.Run("a session the app answers without a topic is 403", func(t *testing.T) {
		status, _ := subscribeStatus(t, client, c.base+"/events", "Cookie: session=carol-cookie")
		if status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", status)
		}
	})

	t.Run("the subscriber cannot choose another topic", func(t *testing.T) {
		status, _ := subscribeStatus(t, client, c.base+"/events?topic=user/bob", alice)
		if status != http.StatusNotFound {
			t.Fatalf("?topic=user/bob: status %d, want 404", status)
		}
		// {rp.header.*} reads the app's answer, never the request: a
		// client sending the header itself changes nothing.
		s := subscribe(t, client, c.base+"/events", alice, "X-Sse-Topic: bob").ready()
		awaitOnly(t, s, pub, "user/alice", "user/bob")
		status, _ = subscribeStatus(t, client, c.base+"/events", "X-Sse-Topic: bob")
		if status != http.StatusUnauthorized {
			t.Fatalf("no session, X-Sse-Topic: bob: status %d, want the app's 401", status)
		}
	})

	t.Run("the app's body is discarded", func(t *testing.T) {
		s := subscribe(t, client, c.base+"/events?"+appBodyParam+"=1", alice).ready()
		awaitOnly(t, s, pub, "user/alice")
		if raw := s.rawString(); strings.Contains(raw, "APP-BODY") {
			t.Fatalf("the app's body reached the browser:\n%s", raw)
		}
	})

	// Over HTTP/2 the stream runs inside reverse_proxy's handle_response,
	// which closes the app's response only when the route ends: an answer
	// with a body keeps its upstream connection busy for the whole stream.
	// An empty answer gives the connection back at once.
	t.Run("HTTP/2: an empty answer does not pin an upstream connection per stream", func(t *testing.T) {
		base := fmt.Sprintf("https://127.0.0.1:%d/events", c.port2)
		const streams = 4
		// open holds streams open and returns how many connections Caddy
		// then holds to the app.
		open := func(query string) int64 {
			for range streams {
				s := subscribe(t, h2Client, base+query, alice).ready()
				if s.resp.ProtoMajor != 2 {
					t.Fatalf("protocol %s, want HTTP/2", s.resp.Proto)
				}
				defer s.close()
			}
			return app.openConns.Load()
		}
		if n := open(""); n > 1 {
			t.Errorf("%d streams with an empty answer hold %d upstream connections, want at most 1", streams, n)
		}
		n := open("?" + appBodyParam + "=1")
		t.Logf("%d HTTP/2 streams whose app answered with a body hold %d upstream connections", streams, n)
		if n < streams {
			t.Errorf("with a body: %d upstream connections, want %d (one pinned per stream; if this changed, update docs/security.md)", n, streams)
		}
	})
}

// awaitTopics publishes a marker to every topic in others, then to every
// topic in want, and checks that s receives want's markers, in order, and
// nothing of the others (published first, they would arrive first).
func awaitTopics(t *testing.T, s *subscriber, publishURL string, want, others []string) {
	t.Helper()
	for _, o := range others {
		publishData(t, publishURL, o, "for "+o)
	}
	for _, w := range want {
		publishData(t, publishURL, w, "for "+w)
	}
	for _, w := range want {
		if ev := s.next(); ev.Data != "for "+w {
			t.Fatalf("got %q, want %q: the subscriber has exactly %q", ev.Data, "for "+w, want)
		}
	}
}

// Several topics in one answer (`grant`), through reverse_proxy and through
// forward_auth, and the single-topic form with forward_auth.
func TestRecipeAppGrantsSeveralTopics(t *testing.T) {
	t.Parallel()
	app := startSessionApp(t)
	c := startCaddy(t, strings.ReplaceAll(`
http://127.0.0.1:{PORT} {
	handle /feed {
		reverse_proxy 127.0.0.1:{APP} {
			@authorized status 200
			handle_response @authorized {
				sse {
					topic user/* org/*
					grant {rp.header.X-Sse-Topics}
				}
			}
		}
	}
	handle /fa {
		forward_auth 127.0.0.1:{APP} {
			uri /auth
			copy_headers X-Sse-Topics
		}
		sse {
			topic user/* org/*
			grant {http.request.header.X-Sse-Topics}
		}
	}
	handle /me {
		forward_auth 127.0.0.1:{APP} {
			uri /auth
			copy_headers X-Sse-User
		}
		sse {
			topic user/{http.request.header.X-Sse-User}
		}
	}
	sse_publish /publish
}
`, "{APP}", app.port()))
	pub := c.base + "/publish"
	alice, carol := "Cookie: session=alice-cookie", "Cookie: session=carol-cookie"
	aliceTopics := []string{"user/alice", "org/7"}
	notAlices := []string{"user/bob", "org/8"}

	for _, route := range []string{"/feed", "/fa"} {
		t.Run(route, func(t *testing.T) {
			url := c.base + route
			s := subscribe(t, client, url, alice).ready()
			awaitTopics(t, s, pub, aliceTopics, notAlices)

			s = subscribe(t, client, url+"?topic=org/7", alice).ready()
			awaitTopics(t, s, pub, []string{"org/7"}, []string{"user/alice"})

			// A client naming another user's topic, or sending the grant
			// header itself, gets nothing more.
			if status, body := subscribeStatus(t, client, url+"?topic=user/bob", alice); status != http.StatusForbidden || !strings.Contains(body, "not granted") {
				t.Fatalf("?topic=user/bob: %d %q, want 403 not granted", status, body)
			}
			s = subscribe(t, client, url, alice, "X-Sse-Topics: user/bob").ready()
			awaitTopics(t, s, pub, aliceTopics, notAlices)
			if status, _ := subscribeStatus(t, client, url+"?topic=user/bob", alice, "X-Sse-Topics: user/bob"); status != http.StatusForbidden {
				t.Fatalf("?topic=user/bob with X-Sse-Topics: user/bob: %d, want 403", status)
			}
			// The app answers 200 but grants nothing: the client's own
			// header must not stand in for the app's (forward_auth's
			// copy_headers deletes the client's copy; {rp.header.*}
			// never reads the request).
			if status, _ := subscribeStatus(t, client, url, carol, "X-Sse-Topics: user/bob"); status != http.StatusForbidden {
				t.Fatalf("a session granted nothing, X-Sse-Topics: user/bob: %d, want 403", status)
			}
			if status, body := subscribeStatus(t, client, url, "X-Sse-Topics: user/bob"); status != http.StatusUnauthorized || !strings.Contains(body, "log in first") {
				t.Fatalf("no session, X-Sse-Topics: user/bob: %d %q, want the app's 401", status, body)
			}
			// The app grants a topic the route does not declare: refused
			// whole, and the log tells the operator why.
			if status, _ := subscribeStatus(t, client, url, "Cookie: session=mallory-cookie"); status != http.StatusForbidden {
				t.Fatalf("a grant naming an undeclared topic: %d, want 403", status)
			}
			c.waitLog(`granted topic \"admin/all\" is not declared on this route`)
		})
	}

	t.Run("forward_auth sends the auth app a GET describing the subscribe", func(t *testing.T) {
		s := subscribe(t, client, c.base+"/fa?topic=org/7", alice).ready()
		defer s.close()
		r := app.last(t)
		if r.Method != http.MethodGet || r.URL.Path != "/auth" ||
			r.Header.Get("X-Forwarded-Method") != http.MethodGet || r.Header.Get("X-Forwarded-Uri") != "/fa?topic=org/7" {
			t.Fatalf("the auth app saw %s %s, X-Forwarded-Method %q, X-Forwarded-Uri %q", r.Method, r.URL,
				r.Header.Get("X-Forwarded-Method"), r.Header.Get("X-Forwarded-Uri"))
		}
	})

	t.Run("single topic with forward_auth", func(t *testing.T) {
		s := subscribe(t, client, c.base+"/me", alice, "X-Sse-User: bob").ready()
		awaitTopics(t, s, pub, []string{"user/alice"}, []string{"user/bob"})
		if status, _ := subscribeStatus(t, client, c.base+"/me", carol, "X-Sse-User: bob"); status != http.StatusForbidden {
			t.Fatalf("a session with no user, X-Sse-User: bob: %d, want 403", status)
		}
		if status, _ := subscribeStatus(t, client, c.base+"/me", "X-Sse-User: bob"); status != http.StatusUnauthorized {
			t.Fatalf("no session, X-Sse-User: bob: %d, want the app's 401", status)
		}
	})
}
