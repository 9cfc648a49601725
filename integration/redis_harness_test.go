package integration

// Harness for the Redis engine's tests (redis_test.go): redis-server
// processes come from internal/redistest; here are a TCP relay that cuts an
// instance off from Redis, stats and publish helpers.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/redistest"
)

// redisProc is a redis-server of internal/redistest.
type redisProc = redistest.Server

func newRedis(t *testing.T, persist bool) *redisProc   { return redistest.New(t, persist) }
func startRedis(t *testing.T, persist bool) *redisProc { return redistest.Start(t, persist) }

// redisPrefix is a key prefix no other test uses.
func redisPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + ":"
}

// redisGlobal is the global option block that puts Caddy's hubs in r under
// prefix.
func redisGlobal(r *redisProc, prefix string) string { return redisGlobalURL(r.URL(), prefix) }

func redisGlobalURL(url, prefix string) string {
	return fmt.Sprintf("sse {\n\t\tredis %s {\n\t\t\tprefix %s\n\t\t}\n\t}", url, prefix)
}

// redisCutter is a TCP relay between one Caddy and Redis that can cut that
// Caddy off (close its connections, refuse new ones) while others still
// reach Redis: a network partition of one instance.
type redisCutter struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func startRedisCutter(t *testing.T, r *redisProc, cut bool) *redisCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &redisCutter{ln: ln, target: r.Addr, cut: cut, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		ln.Close()
		c.setCut(true)
	})
	go c.serve()
	return c
}

func (c *redisCutter) url() string { return fmt.Sprintf("redis://%s/0", c.ln.Addr()) }

// setCut cuts the instance off (closing what is open) or lets it through.
func (c *redisCutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for conn := range c.conns {
			conn.Close()
		}
		clear(c.conns)
	}
}

func (c *redisCutter) serve() {
	for {
		down, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.cut {
			c.mu.Unlock()
			down.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", c.target, 2*time.Second)
		if err != nil {
			c.mu.Unlock()
			down.Close()
			continue
		}
		c.conns[down], c.conns[up] = struct{}{}, struct{}{}
		c.mu.Unlock()
		relay := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			c.mu.Lock()
			delete(c.conns, dst)
			delete(c.conns, src)
			c.mu.Unlock()
		}
		go relay(up, down)
		go relay(down, up)
	}
}

// redisWaitConnected polls the admin API until the hub reports connected
// as want.
func redisWaitConnected(t *testing.T, c *caddyProc, hub string, want bool) {
	t.Helper()
	var last hubStats
	if ok, _ := drillPoll(15*time.Second, func() bool {
		last = c.stats(t, hub)
		return last.Connected == want
	}); !ok {
		t.Fatalf("caddy on port %d: hub %q stats %+v, want connected=%v", c.port, hub, last, want)
	}
}

// pubOutcome is one publish attempt that may fail, as the Redis tests see
// them: a 503 is an answer, not a test failure.
type pubOutcome struct {
	status     int
	id         string
	retryAfter string
	body       []byte
	err        error // transport error or an undecodable 200
}

// redisPublishClient bounds every publish attempt, so a publish hanging
// on a dead Redis is reported rather than waited for.
var redisPublishClient = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}

// tryPublish publishes one event without failing the test: safe in any
// goroutine.
func tryPublish(url string, event map[string]any) pubOutcome {
	b, _ := json.Marshal(event)
	resp, err := redisPublishClient.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return pubOutcome{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	o := pubOutcome{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: body, err: err}
	if err == nil && resp.StatusCode == http.StatusOK {
		var res publishResult
		if err := json.Unmarshal(body, &res); err != nil || res.ID == "" {
			o.err = fmt.Errorf("publish answer %q: %v", body, err)
		}
		o.id = res.ID
	}
	return o
}

// check503 reports what is wrong with an outcome that should be the
// engine-unreachable answer: 503, Retry-After: 1, a JSON error.
func (o pubOutcome) check503() error {
	if o.err != nil {
		return o.err
	}
	if o.status != http.StatusServiceUnavailable {
		return fmt.Errorf("status %d, want 503; body %s", o.status, o.body)
	}
	if o.retryAfter != "1" {
		return fmt.Errorf("503 with Retry-After %q, want \"1\"", o.retryAfter)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(o.body, &e); err != nil || e.Error == "" {
		return fmt.Errorf("503 body %q is not a JSON error", o.body)
	}
	return nil
}

// publishUntilOK retries a publish (answered 503 while the engine is not
// connected) until it is accepted; any other answer fails the test.
func publishUntilOK(t *testing.T, url string, event map[string]any, limit time.Duration) string {
	t.Helper()
	var last pubOutcome
	ok, _ := drillPoll(limit, func() bool {
		last = tryPublish(url, event)
		if last.err == nil && last.status == http.StatusOK {
			return true
		}
		if err := last.check503(); err != nil {
			t.Fatalf("publish %v while waiting for Redis: %v", event, err)
		}
		return false
	})
	if !ok {
		t.Fatalf("publish %v still refused after %v: %d %s", event, limit, last.status, last.body)
	}
	return last.id
}

// splitID cuts "<epoch>-<seq>".
func splitID(t *testing.T, id string) (string, uint64) {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		t.Fatalf("id %q is not <epoch>-<seq>", id)
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		t.Fatalf("id %q is not <epoch>-<seq>", id)
	}
	return id[:i], seq
}

// waitRawAfter waits until the raw stream, from byte off on, contains
// substr; it fails if the stream ends first.
func (s *subscriber) waitRawAfter(off int, substr string) {
	s.t.Helper()
	s.awaitRaw(fmt.Sprintf("%q after byte %d", substr, off), func(raw string) bool { return strings.Contains(raw[off:], substr) })
}

func (s *subscriber) rawLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.Len()
}

// isOpen reports whether the server still holds the stream open.
func (s *subscriber) isOpen() bool {
	select {
	case <-s.closed:
		return false
	default:
		return true
	}
}
