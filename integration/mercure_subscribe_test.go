package integration

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// The subscribe side of sse_mercure on a real Caddy: the 1.0 matcher
// parameters and their refusals in both modes, QUERY with a form body, the
// resume answer's headers, and hole 2 (patterns from a request compiled
// before its token was checked).

// subscribeSite has an anonymous modern-mode hub, an anonymous hub in
// compatibility mode, and a modern hub that wants a token. Debug logging
// shows every pattern compilation ("mercure matcher compiled").
const subscribeSite = `:{PORT} {
	sse_mercure /.well-known/mercure {
		issuer https://issuer.example
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		heartbeat 200ms
	}
	sse_mercure /compat {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		hub compat
		protocol_version_compatibility 8
	}
	sse_mercure /strict {
		issuer https://issuer.example
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		hub strict
	}
}
`

// mercureCompiledLog is the debug entry of one pattern compilation.
const mercureCompiledLog = "mercure matcher compiled"

// subPublisherToken may publish any topic of the hub at hubURL: a 1.0
// access token, as Mercure's mercure-token command makes it.
func subPublisherToken(t *testing.T, hubURL string) string {
	return mercureCLIToken(t, mercurePubKey, "https://issuer.example", hubURL, "*")
}

// matchURL builds a subscription URL from name/value pairs, encoded as
// URLSearchParams (and so EventSource) would.
func matchURL(hub string, pairs ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		q.Add(pairs[i], pairs[i+1])
	}
	return hub + "?" + q.Encode()
}

func TestMercureSubscribeMatchers(t *testing.T) {
	c := startCaddyWith(t, "debug", subscribeSite)
	hub := c.base + "/.well-known/mercure"
	pub := subPublisherToken(t, hub)

	t.Run("EventSource-style GET with match and match_urlpattern", func(t *testing.T) {
		s := subscribe(t, client, matchURL(hub,
			"match", "https://example.com/foo",
			"match_exact", "bar",
			"match_urlpattern", "https://example.com/books/:id(\\d+)"),
			"Accept: text/event-stream").ready()
		mustMercurePublish(t, hub, pub, update("https://example.com/books/abc", "not-a-number"))
		mustMercurePublish(t, hub, pub, update("https://example.com/foo/1", "not-exact"))
		mustMercurePublish(t, hub, pub, update("https://example.com/books/12", "book-12"))
		mustMercurePublish(t, hub, pub, update("https://example.com/foo", "foo"))
		mustMercurePublish(t, hub, pub, update("bar", "bar"))
		for _, want := range []string{"book-12", "foo", "bar"} {
			if ev := s.next(); ev.Data != want {
				t.Fatalf("got %q, want %q (updates the matchers do not select were delivered?)", ev.Data, want)
			}
		}
	})

	t.Run("a relative URL pattern resolves against the hub's URL", func(t *testing.T) {
		s := subscribe(t, client, matchURL(hub, "match_urlpattern", "/rooms/:id")).ready()
		mustMercurePublish(t, hub, pub, update("https://elsewhere.example/rooms/1", "elsewhere"))
		mustMercurePublish(t, hub, pub, update(c.base+"/rooms/1", "here"))
		if ev := s.next(); ev.Data != "here" {
			t.Fatalf("got %q, want the update on the hub's own host", ev.Data)
		}
	})

	long := strings.Repeat("a", 4097)
	many := []string{}
	for i := 0; i < 101; i++ {
		many = append(many, "match", fmt.Sprintf("t%d", i))
	}
	hundred := many[:200]
	costly := "/:a(" + strings.Repeat(`[^\x00]{1000}`, 78) + ")"
	cases := []struct {
		name   string
		path   string // hub path
		pairs  []string
		status int
		says   string // in the answer's body
	}{
		{"topic in modern mode", "/.well-known/mercure", []string{"topic", "a"}, 400, "protocol_version_compatibility 8"},
		{"draft matchURLPattern", "/.well-known/mercure", []string{"matchURLPattern", "/x/:id"}, 400, "match_urlpattern"},
		{"Match", "/.well-known/mercure", []string{"Match", "a"}, 400, "case-sensitive"},
		{"match_foo", "/.well-known/mercure", []string{"match", "a", "match_foo", "b"}, 400, "match_foo"},
		{"no matcher", "/.well-known/mercure", []string{"foo", "bar"}, 400, "match="},
		{"empty matcher", "/.well-known/mercure", []string{"match", ""}, 400, "is empty"},
		{"control character", "/.well-known/mercure", []string{"match", "a\x01"}, 400, "control character"},
		{"C1 control character", "/.well-known/mercure", []string{"match", "a\u0085"}, 400, "control character"},
		{"format character", "/.well-known/mercure", []string{"match", "a\u200db"}, 400, "U+200D"},
		{"bidi override", "/.well-known/mercure", []string{"match_urlpattern", "/x/\u202e"}, 400, "U+202E"},
		{"invalid UTF-8", "/.well-known/mercure", []string{"match", "a\xff"}, 400, "UTF-8"},
		{"101 matchers", "/.well-known/mercure", many, 400, "at most 100"},
		{"100 matchers", "/.well-known/mercure", hundred, 200, ""},
		{"4097-byte matcher", "/.well-known/mercure", []string{"match", long}, 400, "at most 4096"},
		{"4096-byte matcher", "/.well-known/mercure", []string{"match", long[1:]}, 200, ""},
		{"malformed URL pattern", "/.well-known/mercure", []string{"match_urlpattern", "https://example.com/("}, 400, "not a valid URL pattern"},
		{"costly URL pattern", "/.well-known/mercure", []string{"match_urlpattern", costly}, 400, "too costly"},
		{"topic in compatibility mode", "/compat", []string{"topic", "https://example.com/{id}"}, 200, ""},
		{"1.0 names in compatibility mode", "/compat", []string{"match", "a", "match_urlpattern", "/b/:id"}, 200, ""},
		{"draft matchURLPattern in compatibility mode", "/compat", []string{"topic", "a", "matchURLPattern", "/x"}, 400, "match_urlpattern"},
		{"Cf in compatibility mode", "/compat", []string{"topic", "a\u2066"}, 400, "U+2066"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := subscribeStatus(t, client, matchURL(c.base+tc.path, tc.pairs...))
			if status != tc.status || !strings.Contains(body, tc.says) {
				t.Errorf("%d %q, want %d saying %q", status, strings.TrimSpace(body), tc.status, tc.says)
			}
		})
	}
}

// rawQuery sends a QUERY request as curl would (curl -X QUERY --data ...),
// over a plain TCP connection, and returns the response with its body
// streaming.
func rawQuery(t *testing.T, c *caddyProc, target, contentType, body string, headers ...string) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // safety net
	var b strings.Builder
	fmt.Fprintf(&b, "QUERY %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", target, strings.TrimPrefix(c.base, "http://"))
	if contentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", contentType)
	}
	for _, h := range headers {
		fmt.Fprintf(&b, "%s\r\n", h)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "QUERY"})
	if err != nil {
		t.Fatal(err)
	}
	return resp, conn
}

// eventReader reads one stream event by event. One pull iterator for the
// whole stream: ranging over sse.Read again would start a new buffer and
// lose what the previous one had read ahead.
func eventReader(t *testing.T, r io.Reader) (nextData func() string) {
	next, stop := iter.Pull2(sse.Read(r, nil))
	t.Cleanup(stop)
	return func() string {
		t.Helper()
		for {
			ev, err, ok := next()
			if !ok {
				t.Fatal("stream ended")
			}
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if ev.Data != "" {
				return ev.Data
			}
		}
	}
}

func TestMercureSubscribeQuery(t *testing.T) {
	c := startCaddy(t, subscribeSite)
	hub := c.base + "/.well-known/mercure"
	pub := subPublisherToken(t, hub)
	const form = "application/x-www-form-urlencoded"

	t.Run("matchers in the body, the union with the query", func(t *testing.T) {
		body := url.Values{"match": {"https://example.com/q/body"}, "match_urlpattern": {"https://example.com/q/pattern/:id"}}.Encode()
		resp, _ := rawQuery(t, c, "/.well-known/mercure?match="+url.QueryEscape("https://example.com/q/query"), form, body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("QUERY: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		// The stream opens with a comment once the subscriber is in: an
		// update published after it reaches it.
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, ":") {
			t.Fatalf("opening comment: %q %v", line, err)
		}
		nextData := eventReader(t, br)
		mustMercurePublish(t, hub, pub, update("https://example.com/q/other", "other"))
		mustMercurePublish(t, hub, pub, update("https://example.com/q/query", "from-query"))
		mustMercurePublish(t, hub, pub, update("https://example.com/q/body", "from-body"))
		mustMercurePublish(t, hub, pub, update("https://example.com/q/pattern/7", "from-pattern"))
		for _, want := range []string{"from-query", "from-body", "from-pattern"} {
			if got := nextData(); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	})

	t.Run("last_event_id: query over body, header over both", func(t *testing.T) {
		const topic = "https://example.com/q/resume"
		id1 := mustMercurePublish(t, hub, pub, update(topic, "one"))
		id2 := mustMercurePublish(t, hub, pub, update(topic, "two"))
		mustMercurePublish(t, hub, pub, update(topic, "three"))
		cases := []struct {
			name, query, body, header, first string
		}{
			{"body only", "", "last_event_id=" + url.QueryEscape(id1), "", "two"},
			{"query wins over body", "?last_event_id=" + url.QueryEscape(id2), "last_event_id=" + url.QueryEscape(id1), "", "three"},
			{"header wins over both", "?last_event_id=" + url.QueryEscape(id1), "last_event_id=" + url.QueryEscape(id1), "Last-Event-ID: " + id2, "three"},
		}
		for _, tc := range cases {
			body := "match=" + url.QueryEscape(topic) + "&" + tc.body
			var headers []string
			if tc.header != "" {
				headers = append(headers, tc.header)
			}
			resp, _ := rawQuery(t, c, "/.well-known/mercure"+tc.query, form, body, headers...)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Mercure-Last-Event-ID") == "" {
				t.Fatalf("%s: %s, Mercure-Last-Event-ID %q", tc.name, resp.Status, resp.Header.Get("Mercure-Last-Event-ID"))
			}
			if got := eventReader(t, resp.Body)(); got != tc.first {
				t.Errorf("%s: first replayed %q, want %q", tc.name, got, tc.first)
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		cases := []struct {
			name, contentType, body string
			status                  int
		}{
			{"JSON body", "application/json", `{"match":"a"}`, http.StatusUnsupportedMediaType},
			{"no content type", "", "match=a", http.StatusUnsupportedMediaType},
			{"bad name in the body", form, "match=a&matchURLPattern=b", http.StatusBadRequest},
			{"topic in the body", form, "topic=a", http.StatusBadRequest},
			{"Cf in the body", form, "match=" + url.QueryEscape("a\u200b"), http.StatusBadRequest},
			{"body over the bound", form, "match=a&x=" + strings.Repeat("y", 2<<20), http.StatusRequestEntityTooLarge},
		}
		for _, tc := range cases {
			resp, _ := rawQuery(t, c, "/.well-known/mercure", tc.contentType, tc.body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.status)
			}
		}
	})
}

// The resume answer: Mercure-Last-Event-ID, and in compatibility mode the
// 0.x Last-Event-ID response header besides; nothing without a resume
// point.
func TestMercureSubscribeResumeHeaders(t *testing.T) {
	c := startCaddy(t, subscribeSite)
	pub := subPublisherToken(t, c.base+"/.well-known/mercure")
	for _, mode := range []struct {
		path, param, resumeParam string
		compat                   bool
	}{
		{"/.well-known/mercure", "match", "last_event_id", false},
		{"/compat", "topic", "lastEventID", true},
		{"/compat", "match", "last_event_id", true},
	} {
		hub := c.base + mode.path
		topic := "https://example.com/resume" + mode.path
		id := mustMercurePublish(t, hub, pub, update(topic, "first"))
		mustMercurePublish(t, hub, pub, update(topic, "second"))

		s := subscribe(t, client, matchURL(hub, mode.param, topic, mode.resumeParam, id)).ready()
		if ev := s.next(); ev.Data != "second" {
			t.Errorf("%s %s: replayed %q, want second", mode.path, mode.resumeParam, ev.Data)
		}
		h := s.resp.Header
		if h.Get("Mercure-Last-Event-ID") == "" {
			t.Errorf("%s %s: no Mercure-Last-Event-ID", mode.path, mode.resumeParam)
		}
		if got := h.Get("Last-Event-ID"); (got != "") != mode.compat || mode.compat && got != h.Get("Mercure-Last-Event-ID") {
			t.Errorf("%s: Last-Event-ID response header %q (Mercure-Last-Event-ID %q), want it only in compatibility mode, equal",
				mode.path, got, h.Get("Mercure-Last-Event-ID"))
		}
		s.close()

		s = subscribe(t, client, matchURL(hub, mode.param, topic, mode.resumeParam, "earliest")).ready()
		if got := s.resp.Header.Get("Mercure-Last-Event-ID"); got != "earliest" {
			t.Errorf("%s: earliest answered Mercure-Last-Event-ID %q", mode.path, got)
		}
		s.close()

		s = subscribe(t, client, matchURL(hub, mode.param, topic)).ready()
		if s.resp.Header.Get("Mercure-Last-Event-ID") != "" || s.resp.Header.Get("Last-Event-ID") != "" {
			t.Errorf("%s: resume headers without a resume point: %v", mode.path, s.resp.Header)
		}
		s.close()
	}
	// lastEventID means nothing in modern mode: no resume, no header.
	hub := c.base + "/.well-known/mercure"
	s := subscribe(t, client, matchURL(hub, "match", "x", "lastEventID", "earliest")).ready()
	if s.resp.Header.Get("Mercure-Last-Event-ID") != "" {
		t.Error("modern mode read lastEventID")
	}
}

// Hole 2: patterns from the query were compiled before the token was
// checked, so anonymous requests to a hub that wants a token pinned
// gigabytes. Now a request refused for its token, or for its patterns'
// cost, compiles nothing: Caddy logs no compilation for them, and does
// for an accepted request (the control).
func TestMercureSubscribeNoCompileBeforeToken(t *testing.T) {
	c := startCaddyWith(t, "debug", subscribeSite)
	strict := c.base + "/strict"

	// Within every limit, each to compile: refused for the missing token.
	var pairs []string
	for i := 0; i < 100; i++ {
		pairs = append(pairs, "match_urlpattern", fmt.Sprintf("https://example.com/%d/:a([a-z]{100})/:b", i))
	}
	for i := 0; i < 4; i++ {
		status, body := subscribeStatus(t, client, matchURL(strict, pairs...))
		mustStatus(t, "anonymous subscriber on a hub that wants a token", status, http.StatusUnauthorized, []byte(body))
		status, body = subscribeStatus(t, client, matchURL(strict, pairs...), "Authorization: Bearer not.a.token")
		mustStatus(t, "invalid token", status, http.StatusUnauthorized, []byte(body))
	}
	// Over the cost bound: refused before the token is even looked at.
	costly := "/:a(" + strings.Repeat(`[^\x00]{1000}`, 78) + ")"
	for i := 0; i < 4; i++ {
		status, body := subscribeStatus(t, client, matchURL(strict, "match_urlpattern", fmt.Sprintf("/%d%s", i, costly)))
		mustStatus(t, "costly pattern", status, http.StatusBadRequest, []byte(body))
		if !strings.Contains(body, "too costly") {
			t.Errorf("costly pattern refused with %q", body)
		}
	}
	// The control: an accepted subscriber's pattern is compiled and logged.
	// Its entry is logged after every refusal above was answered, so had
	// any of them compiled, its entry would be there too.
	s := subscribe(t, client, matchURL(c.base+"/.well-known/mercure", "match_urlpattern", "https://example.com/control/:id")).ready()
	c.waitLog(mercureCompiledLog)
	s.close()
	if n := strings.Count(c.logs(), mercureCompiledLog); n != 1 {
		t.Errorf("%d compilations logged, want only the accepted subscriber's 1:\n%s", n, compiledLines(c.logs()))
	}
}

func compiledLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, mercureCompiledLog) {
			out = append(out, truncateLine(l))
		}
	}
	return strings.Join(out, "\n")
}

func truncateLine(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
