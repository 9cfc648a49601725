package integration

// Harness for the Redis engine's tests (redis_test.go): a real redis-server
// on a free loopback port that a test can kill and restart on the same
// port, with or without its data, and a minimal RESP client to look into
// Redis from the test.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServerPath finds redis-server. Without it the Redis tests cannot
// run: on CI (CI=true) that is a failure, elsewhere a loud skip.
func redisServerPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	msg := "redis-server is not on PATH: the Redis engine tests cannot run (install redis-server, e.g. apt-get install redis-server)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED, NOT PASSED: " + msg)
	return ""
}

// redisProc is one redis-server that a test starts, kills and restarts on
// the same port and directory.
type redisProc struct {
	t       *testing.T
	bin     string
	port    int
	addr    string // 127.0.0.1:port
	dir     string // its working directory: dump and append-only files
	persist bool   // append-only file, fsync on every write: data survives a SIGKILL

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // of the current process
	log    bytes.Buffer  // of every process so far
}

// newRedis prepares a redis-server on a free port without starting it, for
// tests that start Caddy first; startRedis starts it too.
func newRedis(t *testing.T, persist bool) *redisProc {
	t.Helper()
	r := &redisProc{t: t, bin: redisServerPath(t), port: freePort(t), dir: t.TempDir(), persist: persist}
	r.addr = fmt.Sprintf("127.0.0.1:%d", r.port)
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(r.logs()), "\n")
			t.Logf("redis-server on port %d, last lines of its log:\n%s", r.port, strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	return r
}

func startRedis(t *testing.T, persist bool) *redisProc {
	t.Helper()
	r := newRedis(t, persist)
	r.start()
	return r
}

// url is the address Caddy's redis option takes.
func (r *redisProc) url() string { return fmt.Sprintf("redis://%s/0", r.addr) }

// start runs redis-server on r's port (again, after kill) and returns once
// it answers PING. A persistent server reloads its append-only file first.
func (r *redisProc) start() {
	r.t.Helper()
	args := []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--dir", r.dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", "",
	}
	if r.persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(r.bin, args...)
	cmd.Dir = r.dir
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.mu.Lock()
			r.log.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		<-readDone
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()

	deadline := time.Now().Add(15 * time.Second)
	for {
		reply, err := r.do("PING")
		if err == nil && reply == "PONG" {
			return
		}
		select {
		case <-exited:
			r.t.Fatalf("redis-server exited before answering PING on %s\n%s", r.addr, r.logs())
		case <-time.After(10 * time.Millisecond): // poll interval of the readiness probe
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not answer PING on %s within 15s (last: %v %v)\n%s", r.addr, reply, err, r.logs())
		}
	}
}

// kill sends SIGKILL (no shutdown, no save) and waits for the process to
// be gone, so its port refuses connections when kill returns.
func (r *redisProc) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// restart kills redis-server and starts it again on the same port: with
// persist its data survives, without it Redis comes back empty.
func (r *redisProc) restart() {
	r.t.Helper()
	r.kill()
	r.start()
}

func (r *redisProc) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// redisError is an error reply ("-ERR ...").
type redisError string

func (e redisError) Error() string { return string(e) }

// do sends one command on a fresh connection and returns the reply:
// string (simple or bulk), int64, nil, []any, or a redisError.
func (r *redisProc) do(args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", r.addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return nil, err
	}
	reply, err := readRESP(bufio.NewReader(conn))
	if err != nil {
		return nil, err
	}
	if e, ok := reply.(redisError); ok {
		return nil, e
	}
	return reply, nil
}

func readRESP(br *bufio.Reader) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("resp: empty line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return redisError(line[1:]), nil
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(br); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("resp: unexpected reply %q", line)
}

// mustDo is do failing the test on an error.
func (r *redisProc) mustDo(t *testing.T, args ...string) any {
	t.Helper()
	reply, err := r.do(args...)
	if err != nil {
		t.Fatalf("redis %v: %v", args, err)
	}
	return reply
}

func (r *redisProc) xlen(t *testing.T, key string) int64 {
	t.Helper()
	n, ok := r.mustDo(t, "XLEN", key).(int64)
	if !ok {
		t.Fatalf("XLEN %s: not an integer", key)
	}
	return n
}

// get returns a string key's value, "" when it does not exist.
func (r *redisProc) get(t *testing.T, key string) string {
	t.Helper()
	s, _ := r.mustDo(t, "GET", key).(string)
	return s
}

// redisEntry is one stream entry as XRANGE returns it.
type redisEntry struct {
	ID     string
	Fields map[string]string
}

func (r *redisProc) xrange(t *testing.T, key string) []redisEntry {
	t.Helper()
	reply, ok := r.mustDo(t, "XRANGE", key, "-", "+").([]any)
	if !ok {
		t.Fatalf("XRANGE %s: not an array", key)
	}
	var out []redisEntry
	for _, e := range reply {
		pair, _ := e.([]any)
		if len(pair) != 2 {
			t.Fatalf("XRANGE %s: malformed entry %v", key, e)
		}
		id, _ := pair[0].(string)
		kv, _ := pair[1].([]any)
		fields := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			v, _ := kv[i+1].(string)
			fields[k] = v
		}
		out = append(out, redisEntry{ID: id, Fields: fields})
	}
	return out
}

// redisPrefix is a key prefix no other test uses.
func redisPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + ":"
}

// redisGlobal is the global option block that puts Caddy's hubs in r under
// prefix.
func redisGlobal(r *redisProc, prefix string) string { return redisGlobalURL(r.url(), prefix) }

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
	c := &redisCutter{ln: ln, target: r.addr, cut: cut, conns: map[net.Conn]struct{}{}}
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

// redisHubStats is the part of a hub's admin statistics the Redis tests
// read; it is decoded here because the shared hubStats has no engine fields.
type redisHubStats struct {
	Engine      string `json:"engine"`
	Connected   bool   `json:"connected"`
	Epoch       string `json:"epoch"`
	LastID      string `json:"last_id"`
	Subscribers int    `json:"subscribers"`
}

func redisStats(t *testing.T, c *caddyProc, hub string) redisHubStats {
	t.Helper()
	var out struct {
		Hubs map[string]redisHubStats `json:"hubs"`
	}
	if err := json.Unmarshal(drillAdminGet(t, c, "/sse/stats"), &out); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return out.Hubs[hub]
}

// redisWaitConnected polls the admin API until the hub reports connected
// as want.
func redisWaitConnected(t *testing.T, c *caddyProc, hub string, want bool) {
	t.Helper()
	var last redisHubStats
	if ok, _ := drillPoll(15*time.Second, func() bool {
		last = redisStats(t, c, hub)
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
	deadline := time.After(eventWait)
	for {
		s.mu.Lock()
		found := strings.Contains(s.raw.String()[off:], substr)
		grown := s.grown
		s.mu.Unlock()
		if found {
			return
		}
		select {
		case <-grown:
		case <-s.closed:
			s.t.Fatalf("stream ended while waiting for %q; raw:\n%s", substr, s.rawString())
		case <-deadline:
			s.t.Fatalf("no %q within %v after byte %d; raw:\n%s", substr, eventWait, off, s.rawString())
		}
	}
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
