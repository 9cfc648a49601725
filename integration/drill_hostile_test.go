package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// drillHostileSite has small limits so that hostile input hits them quickly.
const drillHostileSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
		topic rooms/*
		heartbeat off
	}
	sse_publish /publish {
		max_body 64KiB
		max_event 16KiB
		body_timeout 1s
		stream_idle_timeout 1s
	}
}
`

// rawExchange sends a request over a bare connection and reads the answer.
// write runs in its own goroutine, as a hostile client writes whatever the
// server answers; it should stop when done is closed (the answer has been
// read), and its write errors are ignored. For an event stream only the
// opening comment is read.
func drillRawExchange(t *testing.T, addr string, write func(w io.Writer, done <-chan struct{})) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		write(conn, done)
	}()
	defer func() {
		close(done)
		conn.Close() // unblocks a writer stuck on a full socket
		<-wrote
	}()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // safety net
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	// No resp.Body.Close: it would drain an event stream until the read
	// deadline. Closing the connection ends both.
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		return resp.StatusCode, line
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(body)
}

// drillRepeatReader yields prefix, then unit over and over, up to limit bytes in
// all (a safety net: the server must have cut the body long before).
type drillRepeatReader struct {
	prefix, unit []byte
	limit        int64
	sent         atomic.Int64
	pos          int
}

func (r *drillRepeatReader) Read(p []byte) (int, error) {
	sent := r.sent.Load()
	if sent >= r.limit {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.limit-sent)]
	n := 0
	for n < len(p) {
		if int64(n)+sent < int64(len(r.prefix)) {
			n += copy(p[n:], r.prefix[sent+int64(n):])
			continue
		}
		c := copy(p[n:], r.unit[r.pos:])
		n += c
		r.pos = (r.pos + c) % len(r.unit)
	}
	r.sent.Add(int64(n))
	return n, nil
}

// postEndless posts an endless body and returns the answer, which must
// come while the body is still being sent; then it stops sending.
func drillPostEndless(t *testing.T, target, contentType string, body *drillRepeatReader) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: no length announced
	req.Header.Set("Content-Type", contentType)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("endless %s body: %v after %d bytes", contentType, err, body.sent.Load())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if body.sent.Load() >= body.limit {
		t.Errorf("the whole safety limit of %d bytes was sent before the answer", body.limit)
	}
	return resp.StatusCode, string(b)
}

func TestDrillHostileInput(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, drillHostileSite)
	addr := strings.TrimPrefix(c.base, "http://")
	pub := c.base + "/publish"

	t.Run("oversized bodies", func(t *testing.T) {
		big := func(n int) string { return strings.Repeat("x", n) }
		for _, tc := range []struct {
			name, contentType, body string
		}{
			{"json over max_body", "application/json", `{"topic":"news","data":"` + big(200<<10) + `"}`},
			{"text over max_body", "text/plain", big(4 << 20)},
			{"form over max_body", "application/x-www-form-urlencoded", "topic=news&data=" + big(100<<10)},
			{"json event over max_event", "application/json", `{"topic":"news","data":"` + big(20<<10) + `"}`},
			{"array of events over max_event", "application/json", `[{"topic":"news","data":"a"},{"topic":"news","data":"` + big(17<<10) + `"}]`},
		} {
			status, body := post(t, client, pub+"?topic=news", tc.contentType, strings.NewReader(tc.body))
			mustStatus(t, tc.name, status, http.StatusRequestEntityTooLarge, body)
			if !json.Valid(body) || !bytes.Contains(body, []byte(`"error"`)) {
				t.Errorf("%s: the answer is not a JSON error: %s", tc.name, body)
			}
		}
		// A Content-Length that lies about a huge body: cut at max_body.
		status, body := drillRawExchange(t, addr, func(w io.Writer, done <-chan struct{}) {
			fmt.Fprintf(w, "POST /publish?topic=news HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 10000000000\r\n\r\n")
			chunk := []byte(big(32 << 10))
			for i := 0; i < 64; i++ { // 2 MiB at most
				select {
				case <-done:
					return
				default:
				}
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		mustStatus(t, "10 GB announced", status, http.StatusRequestEntityTooLarge, []byte(body))
		drillStillServes(t, c, "oversized bodies")
	})

	t.Run("endless streaming bodies", func(t *testing.T) {
		const limit = 64 << 20
		for _, tc := range []struct {
			name string
			body *drillRepeatReader
		}{
			{"one endless data line", &drillRepeatReader{prefix: []byte("data: "), unit: []byte("x"), limit: limit}},
			{"one event of endless data lines", &drillRepeatReader{prefix: []byte("event: e\n"), unit: []byte("data: " + strings.Repeat("y", 1000) + "\n"), limit: limit}},
			{"one endless comment line", &drillRepeatReader{prefix: []byte(": "), unit: []byte("z"), limit: limit}},
		} {
			status, body := drillPostEndless(t, pub+"?topic=news", "text/event-stream", tc.body)
			t.Logf("%s: %d after %d KiB sent: %s", tc.name, status, tc.body.sent.Load()>>10, strings.TrimSpace(body))
			mustStatus(t, tc.name, status, http.StatusRequestEntityTooLarge, []byte(body))
			if !strings.Contains(body, `"published":0`) {
				t.Errorf("%s: want published 0 in %s", tc.name, body)
			}
		}
		for _, ct := range []string{"text/plain", "application/json"} {
			status, body := drillPostEndless(t, pub+"?topic=news", ct, &drillRepeatReader{prefix: []byte(`{"topic":"news","data":"`), unit: []byte("x"), limit: limit})
			mustStatus(t, "endless "+ct, status, http.StatusRequestEntityTooLarge, []byte(body))
		}
		drillStillServes(t, c, "endless bodies")
	})

	t.Run("endless stream of valid events keeps publishing", func(t *testing.T) {
		// Many times max_body in all, held open: legitimate, and every
		// event is published as it arrives.
		const events = 300
		s := subscribe(t, client, c.base+"/events?topic=news").ready()
		pr, pw := io.Pipe()
		answer := make(chan string, 1)
		go func() {
			req, _ := http.NewRequestWithContext(testCtx(t), http.MethodPost, pub+"?topic=news", pr)
			req.Header.Set("Content-Type", "text/event-stream")
			resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
			if err != nil {
				answer <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answer <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
		pad := strings.Repeat("p", 1000)
		for i := 0; i < events; i++ {
			if _, err := fmt.Fprintf(pw, "data: %s %s\n\n", seqData(i), pad); err != nil {
				t.Fatalf("writing event %d: %v (answer: %s)", i, err, <-answer)
			}
			if i%50 == 49 { // delivered while the body is still open
				for j := i - 49; j <= i; j++ {
					if ev := s.next(); !strings.HasPrefix(ev.Data, seqData(j)+" ") {
						t.Fatalf("event %d: got %.20q", j, ev.Data)
					}
				}
			}
		}
		pw.Close()
		got := <-answer
		if !strings.HasPrefix(got, "200 {") || !strings.Contains(got, fmt.Sprintf(`"published":%d,`, events)) {
			t.Fatalf("held stream of %d events (%d KiB, max_body is 64 KiB): answer %.200s", events, events*1010>>10, got)
		}
		drillStillServes(t, c, "a long held stream")
	})

	t.Run("invalid UTF-8 in every format", func(t *testing.T) {
		s := subscribe(t, client, c.base+"/events?topic=news").ready()
		for _, tc := range []struct {
			name, target, contentType, body string
		}{
			{"json data", pub, "application/json", "{\"topic\":\"news\",\"data\":\"a\xffb\"}"},
			{"json event name", pub, "application/json", "{\"topic\":\"news\",\"event\":\"\xfe\",\"data\":\"x\"}"},
			{"json array, second element", pub, "application/json", "[{\"topic\":\"news\",\"data\":\"ok\"},{\"topic\":\"news\",\"data\":\"\xc3\x28\"}]"},
			{"json topic", pub, "application/json", "{\"topic\":\"ne\xffws\",\"data\":\"x\"}"},
			{"form data, percent-encoded", pub, "application/x-www-form-urlencoded", "topic=news&data=a%FFb"},
			{"form data, raw", pub, "application/x-www-form-urlencoded", "topic=news&data=a\xffb"},
			{"form event name", pub, "application/x-www-form-urlencoded", "topic=news&event=%C0%AF&data=x"},
			{"text body", pub + "?topic=news", "text/plain", "a\xed\xa0\x80b"}, // an encoded surrogate
			{"text event name", pub + "?topic=news&event=%FF", "text/plain", "x"},
			{"text topic", pub + "?topic=%FF", "text/plain", "x"},
			{"untyped body", pub + "?topic=news", "", "\xff"},
			{"event-stream data", pub + "?topic=news", "text/event-stream", "data: a\xffb\n\n"},
			{"event-stream event name", pub + "?topic=news", "text/event-stream", "event: \xf8\x88\x80\x80\x80\ndata: x\n\n"},
		} {
			status, body := post(t, client, tc.target, tc.contentType, strings.NewReader(tc.body))
			mustStatus(t, tc.name, status, http.StatusBadRequest, body)
			if !json.Valid(body) || !bytes.Contains(body, []byte(`"error"`)) {
				t.Errorf("%s: the answer is not a JSON error: %s", tc.name, body)
			}
		}
		// Nothing of the above was published.
		publishData(t, pub, "news", "after invalid UTF-8")
		if ev := s.next(); ev.Data != "after invalid UTF-8" {
			t.Fatalf("an invalid publish reached the subscriber: %+v", ev)
		}
		drillStillServes(t, c, "invalid UTF-8")
	})

	t.Run("malformed query strings", func(t *testing.T) {
		// A query Go cannot parse whole (a bad escape, a semicolon) loses
		// the bad parameter: a subscribe must not turn into a stream of
		// the route's default topics, nor a publish go to fewer topics
		// than named.
		for _, q := range []string{"topic=%zz", "topic=rooms/1;x", "topic=news&topic=rooms/%zz"} {
			s := subscribe(t, client, c.base+"/events?"+q)
			if s.resp.StatusCode == http.StatusOK {
				publishData(t, pub, "news", "for whom? "+q)
				t.Errorf("subscribe ?%s: status 200, want 400 (a stream of %q)", q, s.next().Data)
			} else if s.resp.StatusCode != http.StatusBadRequest {
				t.Errorf("subscribe ?%s: status %s, want 400", q, s.resp.Status)
			}
			s.close()
		}
		for _, q := range []string{"topic=news&topic=%zz", "topic=news&topic=rooms/1;x"} {
			status, body := post(t, client, pub+"?"+q, "text/plain", strings.NewReader("x"))
			if status != http.StatusBadRequest {
				t.Errorf("publish ?%s: %d %s, want 400", q, status, bytes.TrimSpace(body))
			}
		}
		drillStillServes(t, c, "malformed query strings")
	})

	t.Run("slowloris publishers", func(t *testing.T) {
		// One byte every 200ms, slower than body_timeout (1s) allows.
		trickle := func(head, body string, every time.Duration) func(io.Writer, <-chan struct{}) {
			return func(w io.Writer, done <-chan struct{}) {
				if _, err := io.WriteString(w, head); err != nil {
					return
				}
				tick := time.NewTicker(every)
				defer tick.Stop()
				for i := 0; i < len(body); i++ {
					select {
					case <-done:
						return
					case <-tick.C:
					}
					if _, err := w.Write([]byte{body[i]}); err != nil {
						return
					}
				}
			}
		}
		textBody := strings.Repeat("s", 100)
		jsonBody := `{"topic":"news","data":"` + strings.Repeat("j", 100) + `"}`
		for _, tc := range []struct {
			name, head, body string
		}{
			{"text/plain with Content-Length", "POST /publish?topic=news HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n", textBody},
			{"json, chunked", "POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
				drillChunked(jsonBody)},
		} {
			start := time.Now()
			status, body := drillRawExchange(t, addr, trickle(tc.head, tc.body, 200*time.Millisecond))
			t.Logf("%s: %d after %v: %s", tc.name, status, time.Since(start).Round(time.Millisecond), strings.TrimSpace(body))
			mustStatus(t, tc.name, status, http.StatusRequestTimeout, []byte(body))
			drillStillServes(t, c, "a slowloris "+tc.name)
		}

		// A held stream that goes silent after one event: 408 past
		// stream_idle_timeout, saying one event was published.
		s := subscribe(t, client, c.base+"/events?topic=news").ready()
		status, body := drillRawExchange(t, addr, func(w io.Writer, done <-chan struct{}) {
			fmt.Fprintf(w, "POST /publish?topic=news HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%s", drillChunk("data: before the silence\n\n"))
			<-done
		})
		mustStatus(t, "silent stream", status, http.StatusRequestTimeout, []byte(body))
		if !strings.Contains(body, `"published":1`) {
			t.Errorf("silent stream: want published 1 in %s", body)
		}
		if ev := s.next(); ev.Data != "before the silence" {
			t.Errorf("silent stream: got %+v", ev)
		}

		// A held stream dripping a byte every 50ms is never silent for
		// stream_idle_timeout; it lasts longer than body_timeout in all and
		// is legitimate.
		const events = 4
		event := "data: ab\n\n"
		start := time.Now()
		status, body = drillRawExchange(t, addr, func(w io.Writer, done <-chan struct{}) {
			fmt.Fprintf(w, "POST /publish?topic=news HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for _, b := range []byte(strings.Repeat(event, events)) {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				if _, err := io.WriteString(w, drillChunk(string(b))); err != nil {
					return
				}
			}
			io.WriteString(w, "0\r\n\r\n")
		})
		t.Logf("a stream dripping for %v: %d %s", time.Since(start).Round(time.Millisecond), status, strings.TrimSpace(body))
		mustStatus(t, "dripping stream", status, http.StatusOK, []byte(body))
		if !strings.Contains(body, fmt.Sprintf(`"published":%d,`, events)) {
			t.Errorf("dripping stream: want published %d in %s", events, body)
		}
		drillStillServes(t, c, "slowloris publishers")
	})

	// Requests too big for Caddy are refused before the module sees them.
	// Caddy's default limit on the request line and headers is 16 KiB;
	// Go's, which a site may restore with the servers option
	// max_header_size, is 1 MiB. Both are drilled.
	t.Run("huge requests at Caddy's default 16KiB header limit", func(t *testing.T) {
		drillHugeRequests(t, c, 16<<10)
	})
	drillLoadMaxHeaderBytes(t, c, drillHostileSite, 1<<20)
	t.Run("huge requests at a 1MiB header limit", func(t *testing.T) {
		drillHugeRequests(t, c, 1<<20)
	})
}

// drillLoadMaxHeaderBytes loads site with every server's max_header_bytes
// set to n: the Caddyfile option lives in the global options, which the
// harness owns, so the site is adapted to JSON through the admin API,
// changed there and loaded.
func drillLoadMaxHeaderBytes(t *testing.T, c *caddyProc, site string, n int) {
	t.Helper()
	resp, err := drillAdmin.Post("http://"+c.adminAddr+"/adapt", "text/caddyfile", strings.NewReader(c.caddyfile(site)))
	if err != nil {
		t.Fatal(err)
	}
	var adapted struct {
		Result map[string]any `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&adapted)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	apps, _ := adapted.Result["apps"].(map[string]any)
	httpApp, _ := apps["http"].(map[string]any)
	servers, _ := httpApp["servers"].(map[string]any)
	if len(servers) == 0 {
		t.Fatalf("adapted config has no servers: %v", adapted.Result)
	}
	for _, srv := range servers {
		srv.(map[string]any)["max_header_bytes"] = n
	}
	cfg, _ := json.Marshal(adapted.Result)
	resp, err = drillAdmin.Post("http://"+c.adminAddr+"/load", "application/json", bytes.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("load: %s: %s", resp.Status, b)
	}
	client.CloseIdleConnections()
}

// drillHugeRequests drills the request line and headers against Caddy's header
// limit: a million-topic subscribe, header floods, huge Last-Event-IDs.
// What fits reaches the module and gets its answer; what does not is
// refused by Caddy with 431; either way Caddy keeps serving.
func drillHugeRequests(t *testing.T, c *caddyProc, limit int) {
	addr := strings.TrimPrefix(c.base, "http://")
	pub := c.base + "/publish"
	fits := func(n int) bool { return n < limit-1024 }

	t.Run("million-topic subscribe", func(t *testing.T) {
		// More than max_topics_per_subscriber (64), and as many as fit:
		// refused by the module. Beyond 10,000 parameters Go's
		// url.ParseQuery gives up on the whole query; the answer must still
		// be a refusal, not a stream of some other topics.
		for _, n := range []int{65, 5000, 10001} {
			if !fits(n * len("topic=news&")) {
				continue
			}
			s := subscribe(t, client, c.base+"/events?"+strings.TrimSuffix(strings.Repeat("topic=news&", n), "&"))
			if s.resp.StatusCode != http.StatusBadRequest {
				what := ""
				if s.resp.StatusCode == http.StatusOK {
					publishData(t, pub, "news", "for whom?")
					what = fmt.Sprintf(" (a stream of the route's default topics: %q arrived)", s.next().Data)
				}
				t.Errorf("%d topics: status %s, want 400%s", n, s.resp.Status, what)
			}
			s.close()
		}
		// Way beyond (an 11 MB request line): Caddy refuses it.
		status, body := drillRawExchange(t, addr, func(w io.Writer, done <-chan struct{}) {
			bw := bufio.NewWriterSize(w, 64<<10)
			bw.WriteString("GET /events?")
			for i := 0; i < 1_000_000; i++ {
				if i%10000 == 0 {
					select {
					case <-done:
						return
					default:
					}
				}
				if _, err := fmt.Fprintf(bw, "topic=rooms/%d&", i); err != nil {
					return
				}
			}
			bw.WriteString("topic=news HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			bw.Flush()
		})
		t.Logf("1,000,000 topics: %d %.80q", status, body)
		if status != http.StatusBadRequest && status != http.StatusRequestURITooLong && status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("1,000,000 topics: status %d, want 400, 414 or 431", status)
		}
		drillStillServes(t, c, "a million-topic subscribe")
	})

	t.Run("header floods", func(t *testing.T) {
		flood := func(method, path string, n, size int) func(io.Writer, <-chan struct{}) {
			return func(w io.Writer, done <-chan struct{}) {
				bw := bufio.NewWriterSize(w, 64<<10)
				fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path)
				val := strings.Repeat("v", size)
				for i := 0; i < n; i++ {
					if i%1000 == 0 {
						select {
						case <-done:
							return
						default:
						}
					}
					if _, err := fmt.Fprintf(bw, "X-Flood-%05d: %s\r\n", i, val); err != nil {
						return
					}
				}
				bw.WriteString("\r\n")
				bw.Flush()
			}
		}
		for _, tc := range []struct {
			name    string
			method  string
			n, size int
		}{
			{"20,000 headers on subscribe", "GET", 20000, 50},
			{"20,000 headers on publish", "POST", 20000, 50},
			{"one 2 MB header", "POST", 1, 2 << 20},
			{"3,000 headers on subscribe", "GET", 3000, 20},
			{"100 headers on subscribe", "GET", 100, 20},
		} {
			path := "/events?topic=news"
			if tc.method == "POST" {
				path = "/publish?topic=news"
			}
			size := tc.n * (tc.size + len("X-Flood-00000: \r\n"))
			start := time.Now()
			status, body := drillRawExchange(t, addr, flood(tc.method, path, tc.n, tc.size))
			t.Logf("%s: %d after %v", tc.name, status, time.Since(start))
			switch {
			case !fits(size) && status != http.StatusRequestHeaderFieldsTooLarge:
				t.Errorf("%s (%d KiB): status %d, want 431: %.200s", tc.name, size>>10, status, body)
			case fits(size) && (status != http.StatusOK || body != ": caddy-sse\n"):
				t.Errorf("%s (%d KiB): status %d and %q, want an event stream", tc.name, size>>10, status, body)
			}
			drillStillServes(t, c, tc.name)
		}
	})

	t.Run("huge Last-Event-ID", func(t *testing.T) {
		epoch := c.stats(t, "default").Epoch
		big := 40 << 10
		if !fits(big) {
			// Refused by Caddy; a smaller one still gets the reset.
			s := subscribe(t, client, c.base+"/events?topic=news", "Last-Event-ID: "+strings.Repeat("z", big))
			if s.resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("a %d KiB Last-Event-ID: status %s, want 431", big>>10, s.resp.Status)
			}
			s.close()
			drillStillServes(t, c, "a Last-Event-ID over the header limit")
			big = limit - 4<<10
		}
		for _, tc := range []struct {
			name, id string
			valid    bool // valid UTF-8: the echo is a prefix of it
			query    bool // sent as last_event_id instead of the header
		}{
			{"z", strings.Repeat("z", big), true, false},
			{"an id with a huge sequence", epoch + "-" + strings.Repeat("9", big), true, false},
			{"two-byte runes", strings.Repeat("é", big/2), true, false},
			{"continuation bytes", strings.Repeat("\x80", big), false, false},
			{"0xFF bytes", strings.Repeat("\xff", big), false, false},
			{"z in the query", strings.Repeat("q", big), true, true},
		} {
			name := fmt.Sprintf("%d KiB of %s", big>>10, tc.name)
			target, headers := c.base+"/events?topic=news", []string{"Last-Event-ID: " + tc.id}
			if tc.query {
				target, headers = target+"&last_event_id="+url.QueryEscape(tc.id), nil
			}
			s := subscribe(t, client, target, headers...).ready()
			ev := s.next()
			var rd resetData
			if ev.Type != "reset" || json.Unmarshal([]byte(ev.Data), &rd) != nil || rd.Reason != "unknown" {
				t.Fatalf("%s: want an unknown reset, got %.300q", name, ev.Data)
			}
			switch {
			case tc.valid && (len(rd.LastEventID) > 128 || len(rd.LastEventID) < 125 || !strings.HasPrefix(tc.id, rd.LastEventID)):
				t.Errorf("%s: echoed %d bytes %.40q..., want the first 128 bytes or just under", name, len(rd.LastEventID), rd.LastEventID)
			case !tc.valid && len([]rune(rd.LastEventID)) > 128:
				t.Errorf("%s: echoed %d characters, want at most 128", name, len([]rune(rd.LastEventID)))
			}
			if len(ev.Data) > 1024 {
				t.Errorf("%s: the reset's data is %d bytes", name, len(ev.Data))
			}
			data := "live after " + name
			publishData(t, pub, "news", data)
			if ev := s.next(); ev.Data != data {
				t.Fatalf("%s: after the reset got %+v, want %q", name, ev, data)
			}
			s.close()
		}
		drillStillServes(t, c, "huge Last-Event-IDs")
	})
}

// chunk is one chunk of a chunked body.
func drillChunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

// chunked encodes s as a whole chunked body, one byte per chunk, so that a
// trickle of it arrives one chunk at a time.
func drillChunked(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString(drillChunk(s[i : i+1]))
	}
	return b.String() + "0\r\n\r\n"
}
