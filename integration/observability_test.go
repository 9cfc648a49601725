package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Metrics, admin views and logs (docs/operations.md),
// against a real Caddy: the admin /metrics scraped as Prometheus would.

const obsSite = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
		topic chat/*
		heartbeat %s
	}
	sse_publish /publish {
		token secret
		allow_from 127.0.0.1/32
	}
}
`

// scrapeMetrics reads the admin /metrics into series -> value, keeping the
// caddy_sse_ series, keyed as name{label="value",...} with labels sorted.
func scrapeMetrics(t *testing.T, c *caddyProc) map[string]float64 {
	t.Helper()
	return parseMetrics(t, drillAdminGet(t, c, "/metrics"))
}

var seriesLine = regexp.MustCompile(`^(caddy_sse_[a-z_]+)(?:\{(.*)\})? (\S+)$`)

func parseMetrics(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		m := seriesLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := strings.Split(m[2], ",")
		sort.Strings(labels)
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		out[m[1]+"{"+strings.Join(labels, ",")+"}"] = v
	}
	return out
}

// wantMetrics checks series values, listing what differs.
func wantMetrics(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present: %v), want %v", k, g, ok, v)
		}
	}
}

func series(name, labels string) string { return name + "{" + labels + "}" }

// Subscribing, publishing, refusing, a client that misbehaves and a reload
// show in the metrics with the declared topic as label; the reload keeps
// every value (the collector reads pooled hubs) and registers nothing
// twice (the new configuration's registry is fresh).
func TestMetricsScrapeAcrossReload(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, fmt.Sprintf(obsSite, "15s"))
	news := subscribe(t, client, c.base+"/events?topic=news").ready()
	subscribe(t, client, c.base+"/events?topic=chat/a").ready()
	subscribe(t, client, c.base+"/events?topic=chat/b").ready()

	publishData(t, c.base+"/publish", "news", "1")
	publishData(t, c.base+"/publish", "news", "2")
	publishData(t, c.base+"/publish", "chat/a", "3")
	publishJSON(t, c.base+"/publish", map[string]any{"topics": []string{"chat/a", "chat/b"}, "data": "4"})
	news.next()
	news.next()
	// Refusals: an undeclared topic (404), a wrong token (401).
	status, body := post(t, client, c.base+"/publish", "application/json", stringsReader(`{"topic":"nope","data":"x"}`))
	mustStatus(t, "undeclared topic", status, http.StatusNotFound, body)
	status, body = post(t, client, c.base+"/publish", "text/plain", stringsReader("x"), "Authorization: Bearer wrong")
	mustStatus(t, "wrong token", status, http.StatusUnauthorized, body)
	// A resume with a malformed id: an unknown reset.
	subscribe(t, client, c.base+"/events?topic=news", "Last-Event-ID: garbage").ready()
	// A client that sends bytes up its stream is closed: a protocol drop.
	rs, err := drillDialStream(testCtx(t), nil, fmt.Sprintf("127.0.0.1:%d", c.port), "/events?topic=news")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.conn.Close()
	if _, err := rs.conn.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	// Closed with our bytes unread: a reset is a close too.
	if _, err := rs.rest(eventWait); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the stream of a client sending bytes was not closed: %v", err)
	}

	before := map[string]float64{
		series("caddy_sse_engine_up", `hub="default"`):                                                1,
		series("caddy_sse_subscribers", `hub="default",topic="news"`):                                 2,
		series("caddy_sse_subscribers", `hub="default",topic="chat/*"`):                               2,
		series("caddy_sse_published_total", `hub="default",topic="news"`):                             2,
		series("caddy_sse_published_total", `hub="default",topic="chat/*"`):                           3,
		series("caddy_sse_delivered_total", `hub="default",topic="news"`):                             2,
		series("caddy_sse_delivered_total", `hub="default",topic="chat/*"`):                           3,
		series("caddy_sse_resets_total", `hub="default",reason="unknown",topic="news"`):               1,
		series("caddy_sse_subscribers_dropped_total", `hub="default",reason="protocol",topic="news"`): 1,
		series("caddy_sse_subscribers_dropped_total", `hub="default",reason="slow",topic="news"`):     0,
		series("caddy_sse_publish_rejected_total", `hub="default",status="404"`):                      1,
		series("caddy_sse_publish_rejected_total", `hub="default",status="401"`):                      1,
		series("caddy_sse_publish_duration_seconds_count", `hub="default"`):                           4,
	}
	var got map[string]float64
	// The protocol drop is counted by the stream's goroutine as it ends.
	if ok, _ := drillPoll(10*time.Second, func() bool {
		got = scrapeMetrics(t, c)
		return got[series("caddy_sse_subscribers", `hub="default",topic="news"`)] == 2
	}); !ok {
		t.Fatalf("subscribers of news never settled at 2: %v", got)
	}
	wantMetrics(t, got, before)
	for k := range got {
		if strings.Contains(k, "chat/a") || strings.Contains(k, "chat/b") {
			t.Errorf("a concrete topic of a pattern became a label: %s", k)
		}
	}
	if t.Failed() {
		return
	}

	// A reload closes the streams (shutdown drops) and keeps every count.
	c.reload(fmt.Sprintf(obsSite, "20s"))
	after := map[string]float64{}
	for k, v := range before {
		after[k] = v
	}
	after[series("caddy_sse_subscribers", `hub="default",topic="news"`)] = 0
	after[series("caddy_sse_subscribers", `hub="default",topic="chat/*"`)] = 0
	after[series("caddy_sse_subscribers_dropped_total", `hub="default",reason="shutdown",topic="news"`)] = 2
	after[series("caddy_sse_subscribers_dropped_total", `hub="default",reason="shutdown",topic="chat/*"`)] = 2
	if ok, _ := drillPoll(10*time.Second, func() bool {
		got = scrapeMetrics(t, c)
		return got[series("caddy_sse_subscribers_dropped_total", `hub="default",reason="shutdown",topic="chat/*"`)] == 2 &&
			got[series("caddy_sse_subscribers", `hub="default",topic="chat/*"`)] == 0
	}); !ok {
		t.Fatalf("the reload's shutdown drops never showed: %v", got)
	}
	wantMetrics(t, got, after)
	// Counting goes on in the new configuration.
	publishData(t, c.base+"/publish", "news", "5")
	if n := scrapeMetrics(t, c)[series("caddy_sse_published_total", `hub="default",topic="news"`)]; n != 3 {
		t.Fatalf("published after the reload = %v, want 3", n)
	}
	if strings.Contains(c.logs(), "duplicate metrics collector") || strings.Contains(c.logs(), "registering metrics") {
		t.Fatalf("the reload registered metrics twice:\n%s", c.logs())
	}
}

// adminGetStatus reads an admin path, returning its status and body.
func adminGetStatus(t *testing.T, c *caddyProc, path string) (int, []byte) {
	t.Helper()
	resp, err := drillAdmin.Get("http://" + c.adminAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type adminTopic struct {
	Topic        string `json:"topic"`
	Declared     string `json:"declared"`
	Held         bool   `json:"held"`
	Subscribers  int    `json:"subscribers"`
	Retained     int    `json:"retained_events"`
	RetainedB    int64  `json:"retained_bytes"`
	RetainedSize string `json:"retained_size"`
	FirstID      string `json:"first_id"`
	LastID       string `json:"last_id"`
	Published    uint64 `json:"published"`
	Delivered    uint64 `json:"delivered"`
	Declaration  struct {
		Topic       string            `json:"topic"`
		Subscribers int64             `json:"subscribers"`
		Published   uint64            `json:"published"`
		Dropped     map[string]uint64 `json:"dropped"`
	} `json:"declaration"`
}

// The admin views list hubs and page through topics; a topic of a pattern
// is found by its full name (slashes included) and names its declaration;
// unknown hubs and topics are 404 JSON.
func TestAdminHubAndTopicViews(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, fmt.Sprintf(obsSite, "15s"))
	subscribe(t, client, c.base+"/events?topic=chat/room/x").close() // not declared: 404, creates nothing
	sub := subscribe(t, client, c.base+"/events?topic=chat/a").ready()
	first := publishData(t, c.base+"/publish", "chat/a", "hello")
	last := publishData(t, c.base+"/publish", "chat/a", "again")
	publishData(t, c.base+"/publish", "chat/b", "b")
	publishData(t, c.base+"/publish", "news", "n")
	sub.next()

	var hubs struct {
		Hubs []struct {
			Name        string   `json:"name"`
			Engine      string   `json:"engine"`
			Subscribers int      `json:"subscribers"`
			Topics      int      `json:"topics"`
			Declared    []string `json:"declared"`
		} `json:"hubs"`
	}
	if err := json.Unmarshal(drillAdminGet(t, c, "/sse/hubs"), &hubs); err != nil {
		t.Fatal(err)
	}
	if len(hubs.Hubs) != 1 || hubs.Hubs[0].Name != "default" || hubs.Hubs[0].Engine != "memory" ||
		hubs.Hubs[0].Topics != 3 || hubs.Hubs[0].Subscribers != 1 || fmt.Sprint(hubs.Hubs[0].Declared) != "[chat/* news]" {
		t.Fatalf("/sse/hubs = %+v", hubs)
	}

	// Paging, two at a time: chat/a chat/b | news.
	var names []string
	after := ""
	for page := 0; ; page++ {
		if page > 3 {
			t.Fatal("paging does not end")
		}
		var p struct {
			Topics []adminTopic `json:"topics"`
			Next   string       `json:"next"`
		}
		if err := json.Unmarshal(drillAdminGet(t, c, "/sse/hubs/default/topics?limit=2&after="+after), &p); err != nil {
			t.Fatal(err)
		}
		for _, tp := range p.Topics {
			names = append(names, tp.Topic)
		}
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if fmt.Sprint(names) != "[chat/a chat/b news]" {
		t.Fatalf("paged topics %v", names)
	}

	var tp adminTopic
	if err := json.Unmarshal(drillAdminGet(t, c, "/sse/hubs/default/topics/chat/a"), &tp); err != nil {
		t.Fatal(err)
	}
	if tp.Topic != "chat/a" || tp.Declared != "chat/*" || !tp.Held || tp.Subscribers != 1 || tp.Retained != 2 ||
		tp.FirstID != first.ID || tp.LastID != last.ID || tp.Published != 2 || tp.Delivered != 2 ||
		!strings.HasSuffix(tp.RetainedSize, "B") || tp.RetainedB <= 0 ||
		tp.Declaration.Topic != "chat/*" || tp.Declaration.Published != 3 || tp.Declaration.Subscribers != 1 {
		t.Fatalf("topic view %+v", tp)
	}
	// A declared topic of a pattern that was never used: known, not held.
	if err := json.Unmarshal(drillAdminGet(t, c, "/sse/hubs/default/topics/chat/zzz"), &tp); err != nil {
		t.Fatal(err)
	}
	if tp.Held || tp.Declared != "chat/*" || tp.Retained != 0 {
		t.Fatalf("unused topic view %+v", tp)
	}

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/sse/hubs/nope", http.StatusNotFound},
		{"/sse/hubs/nope/topics", http.StatusNotFound},
		{"/sse/hubs/default/topics/undeclared", http.StatusNotFound},
		{"/sse/hubs/default/topics/chat/a/b", http.StatusNotFound}, // "*" is one segment
		{"/sse/hubs/default/topics?limit=0", http.StatusBadRequest},
		{"/sse/hubs/default/topics?limit=x", http.StatusBadRequest},
	} {
		status, body := adminGetStatus(t, c, tc.path)
		var e struct {
			Error string `json:"error"`
		}
		if status != tc.want || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("GET %s: %d %s, want %d with a JSON error", tc.path, status, body, tc.want)
		}
	}
	// /sse/stats stays.
	if st := c.stats(t, "default"); st.Published != 4 {
		t.Fatalf("/sse/stats published = %d, want 4", st.Published)
	}
}

// Provisioning logs one info line per handler with its topics and limits
// humanized; refusals are warned about at most once a second per status,
// the next line counting those left out; subscribe and unsubscribe are at
// debug; nothing is logged at info per event.
func TestLogsProvisionAndThrottledWarnings(t *testing.T) {
	t.Parallel()
	c := startCaddyWith(t, "debug", fmt.Sprintf(obsSite, "15s"))
	c.waitLog(`"msg":"sse handler ready"`)
	logs := c.logs()
	for _, want := range []string{`"topics":["news (replay 1000, 4.0 MiB)","chat/* (replay 1000, 4.0 MiB, max_topics 10000)"]`,
		`"queue_size":"1.0 MiB"`, `"heartbeat":"15s"`, `"write_timeout":"10s"`, `"msg":"sse_publish handler ready"`, `"max_body":"1.0 MiB"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the provision lines lack %s:\n%s", want, logs)
		}
	}

	s := subscribe(t, client, c.base+"/events?topic=news").ready()
	for i := range 20 {
		publishData(t, c.base+"/publish", "news", seqData(i))
	}
	s.close()
	c.waitLog(`"msg":"unsubscribed"`)
	if !strings.Contains(c.logs(), `"msg":"subscribed"`) {
		t.Error("no debug line for the subscribe")
	}

	mark := len(c.logs())
	const burst = 20
	for range burst {
		status, body := post(t, client, c.base+"/publish", "text/plain", stringsReader("x"), "Authorization: Bearer wrong")
		mustStatus(t, "wrong token", status, http.StatusUnauthorized, body)
	}
	refused := regexp.MustCompile(`"msg":"publish refused".*"status":401.*"client":"127.0.0.1".*"suppressed":(\d+)`)
	countRefused := func() (lines int, suppressed int) {
		for _, l := range strings.Split(c.logs()[mark:], "\n") {
			if m := refused.FindStringSubmatch(l); m != nil {
				lines++
				n, _ := strconv.Atoi(m[1])
				suppressed += n
			}
		}
		return lines, suppressed
	}
	if n, _ := countRefused(); n < 1 || n > 2 {
		t.Fatalf("%d warnings for %d refusals within about a second, want 1 (or 2 across a second's edge):\n%s", n, burst, c.logs()[mark:])
	}
	// Once the second has passed, the next refusal's line counts the rest.
	if ok, _ := drillPoll(5*time.Second, func() bool {
		post(t, client, c.base+"/publish", "text/plain", stringsReader("x"), "Authorization: Bearer wrong")
		_, sup := countRefused()
		return sup > 0
	}); !ok {
		t.Fatalf("no warning counted the suppressed refusals:\n%s", c.logs()[mark:])
	}
	for _, l := range strings.Split(c.logs(), "\n") {
		if strings.Contains(l, `"level":"info"`) && strings.Contains(l, "event-00") {
			t.Errorf("an info line per event: %s", l)
		}
	}
}

// The Redis engine reports the same series: this instance's publishes and
// deliveries, its subscribers, the engine's health; the topic view adds
// what Redis retains.
func TestMetricsRedisEngine(t *testing.T) {
	t.Parallel()
	r := startRedis(t, false)
	c := startCaddyWith(t, redisGlobal(r, redisPrefix()), fmt.Sprintf(obsSite, "15s"))
	redisWaitConnected(t, c, "default", true)
	s := subscribe(t, client, c.base+"/events?topic=chat/a").ready()
	first := publishData(t, c.base+"/publish", "chat/a", "1")
	last := publishData(t, c.base+"/publish", "chat/a", "2")
	s.next()
	s.next() // delivered through the bus reader: counted by now
	wantMetrics(t, scrapeMetrics(t, c), map[string]float64{
		series("caddy_sse_engine_up", `hub="default"`):                      1,
		series("caddy_sse_subscribers", `hub="default",topic="chat/*"`):     1,
		series("caddy_sse_published_total", `hub="default",topic="chat/*"`): 2,
		series("caddy_sse_delivered_total", `hub="default",topic="chat/*"`): 2,
		series("caddy_sse_publish_duration_seconds_count", `hub="default"`): 2,
	})
	// A resume in Redis: one event replayed.
	subscribe(t, client, c.base+"/events?topic=chat/a", "Last-Event-ID: "+first.ID).ready().next()
	if n := scrapeMetrics(t, c)[series("caddy_sse_replayed_total", `hub="default",topic="chat/*"`)]; n != 1 {
		t.Fatalf("replayed = %v, want 1", n)
	}
	var tp adminTopic
	if err := json.Unmarshal(drillAdminGet(t, c, "/sse/hubs/default/topics/chat/a"), &tp); err != nil {
		t.Fatal(err)
	}
	if !tp.Held || tp.Declared != "chat/*" || tp.Subscribers != 2 || tp.Retained != 2 || tp.FirstID != first.ID ||
		tp.LastID != last.ID || tp.RetainedB <= 0 {
		t.Fatalf("redis topic view %+v", tp)
	}
	r.Kill()
	if ok, _ := drillPoll(15*time.Second, func() bool {
		return scrapeMetrics(t, c)[series("caddy_sse_engine_up", `hub="default"`)] == 0
	}); !ok {
		t.Fatal("engine_up stayed 1 with Redis gone")
	}
}
