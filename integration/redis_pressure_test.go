package integration

// Redis under pressure through real Caddy processes: an evicting
// maxmemory-policy reported in stats and the log, out of memory refused
// whole, a hung Redis reported as not connected, and no internal address
// in what a publisher is told.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/redistest"
)

// redisHealth is the part of a hub's stats this file checks.
type redisHealth struct {
	Connected   bool   `json:"connected"`
	LastError   string `json:"last_error"`
	RedisPolicy string `json:"redis_policy"`
	Warning     string `json:"warning"`
}

func redisHealthOf(t *testing.T, c *caddyProc) redisHealth {
	t.Helper()
	var out struct {
		Hubs map[string]redisHealth `json:"hubs"`
	}
	if err := json.Unmarshal(drillAdminGet(t, c, "/sse/stats"), &out); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return out.Hubs["default"]
}

func startRedisArgs(t *testing.T, args ...string) *redisProc {
	t.Helper()
	r := redistest.New(t, false)
	r.Args = args
	r.Start()
	return r
}

func TestRedisEvictingPolicyIsReported(t *testing.T) {
	r := startRedisArgs(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	c := startCaddyWith(t, redisGlobal(r, redisPrefix()), redisSite)
	redisWaitConnected(t, c, "default", true)
	var h redisHealth
	if ok, _ := drillPoll(15*time.Second, func() bool { h = redisHealthOf(t, c); return h.RedisPolicy != "" }); !ok {
		t.Fatalf("stats never showed the policy: %+v", h)
	}
	if h.RedisPolicy != "allkeys-lru" || !strings.Contains(h.Warning, "allkeys-lru") {
		t.Fatalf("stats: %+v, want redis_policy allkeys-lru and a warning", h)
	}
	c.waitLog("redis may evict this hub's keys")
	if !strings.Contains(c.logs(), `"level":"error"`) {
		t.Fatal("the evicting policy was not logged as an error")
	}
}

// TestRedisOutOfMemoryRefusesPublish: over maxmemory with noeviction, a
// publish to a new topic is a 503 with Retry-After and a JSON error, and
// Redis is left exactly as it was.
func TestRedisOutOfMemoryRefusesPublish(t *testing.T) {
	r := startRedisArgs(t, "--maxmemory-policy", "noeviction")
	prefix := redisPrefix()
	c := startCaddyWith(t, redisGlobal(r, prefix), redisSite)
	redisWaitConnected(t, c, "default", true)
	publishData(t, c.base+"/publish", "news", "before")
	r.PushPastMaxmemory(t)
	dbsize, seq := r.MustDo(t, "DBSIZE"), r.Get(t, prefix+"default#seq")

	for _, topic := range []string{"a", "news"} { // a has no stream yet
		o := tryPublish(c.base+"/publish", map[string]any{"topic": topic, "data": strings.Repeat("y", 2000)})
		if err := o.check503(); err != nil {
			t.Fatalf("publish to %s over maxmemory: %v", topic, err)
		}
		if !strings.Contains(string(o.body), "out of memory") {
			t.Fatalf("503 body does not say why: %s", o.body)
		}
	}
	if got := r.MustDo(t, "DBSIZE"); got != dbsize {
		t.Fatalf("DBSIZE %v -> %v: a refused publish wrote keys", dbsize, got)
	}
	if got := r.Get(t, prefix+"default#seq"); got != seq {
		t.Fatalf("the counter moved %s -> %s", seq, got)
	}
}

// TestRedisHungIsReportedAndErrorsAreGeneric: SIGSTOPped, Redis keeps its
// connections but answers nothing; stats say not connected, and say
// connected again after SIGCONT. With Redis gone, the 503 does not name
// its address.
func TestRedisHungIsReportedAndErrorsAreGeneric(t *testing.T) {
	r := startRedis(t, false)
	c := startCaddyWith(t, redisGlobal(r, redisPrefix()), redisSite)
	redisWaitConnected(t, c, "default", true)
	r.Pause()
	// A ping every second with a 1 s timeout notices within about 2 s; the
	// bus reader's blocking read alone would take 8 s or more.
	paused := time.Now()
	redisWaitConnected(t, c, "default", false)
	if d := time.Since(paused); d > 5*time.Second {
		t.Fatalf("a hung Redis was reported after %v", d)
	}
	r.Resume()
	redisWaitConnected(t, c, "default", true)

	r.Kill()
	o := tryPublish(c.base+"/publish", map[string]any{"topic": "news", "data": "x"})
	if err := o.check503(); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(r.Port)
	if strings.Contains(string(o.body), "127.0.0.1") || strings.Contains(string(o.body), port) || strings.Contains(string(o.body), "dial") {
		t.Fatalf("503 body names an internal address: %s", o.body)
	}
	if o.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d", o.status)
	}
}
