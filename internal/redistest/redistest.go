// Package redistest runs real redis-server processes for tests: on a free
// loopback port, in a temporary directory, killed and restarted on the same
// port with or without their data, and a minimal RESP client to look into
// Redis from the test.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/testneeds"
)

// Binary finds redis-server. Without it the Redis tests cannot run: on
// CI (CI=true) that is a failure, elsewhere a skip that the package's
// TestMain (testneeds.Run) reports.
func Binary(t testing.TB) string {
	t.Helper()
	return testneeds.Binary(t, "redis-server", "the Redis engine tests", "apt-get install -y redis-server")
}

// Server is one redis-server that a test starts, kills and restarts on
// the same port and directory.
type Server struct {
	Addr    string // 127.0.0.1:port
	Port    int
	t       testing.TB
	bin     string
	dir     string // its working directory: dump and append-only files
	persist bool   // append-only file, fsync on every write: data survives a SIGKILL

	// Password, when set before Start, is required of clients
	// (requirepass); Do authenticates with it.
	Password string
	// Args, when set before Start, are extra redis-server arguments
	// ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru").
	Args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // of the current process
	log    bytes.Buffer  // of every process so far
}

// New prepares a redis-server on a free port without starting it, for
// tests that start their servers first; Start starts it too. A persistent
// one writes every change to its append-only file (fsync always), so its
// data survives a SIGKILL.
func New(t testing.TB, persist bool) *Server {
	t.Helper()
	r := &Server{t: t, bin: Binary(t), Port: freePort(t), dir: t.TempDir(), persist: persist}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
	t.Cleanup(func() {
		r.Kill()
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(r.Logs()), "\n")
			t.Logf("redis-server on port %d, last lines of its log:\n%s", r.Port, strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	return r
}

// Start runs a redis-server for the test.
func Start(t testing.TB, persist bool) *Server {
	t.Helper()
	r := New(t, persist)
	r.Start()
	return r
}

// URL is the server's redis:// URL, database 0.
func (r *Server) URL() string { return fmt.Sprintf("redis://%s/0", r.Addr) }

// Start runs redis-server on r's port (again, after kill) and returns once
// it answers PING. A persistent server reloads its append-only file first.
func (r *Server) Start() {
	r.t.Helper()
	args := []string{
		"--port", strconv.Itoa(r.Port),
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
	if r.Password != "" {
		args = append(args, "--requirepass", r.Password)
	}
	args = append(args, r.Args...)
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
		reply, err := r.Do("PING")
		if err == nil && reply == "PONG" {
			return
		}
		select {
		case <-exited:
			r.t.Fatalf("redis-server exited before answering PING on %s\n%s", r.Addr, r.Logs())
		case <-time.After(10 * time.Millisecond): // poll interval of the readiness probe
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not answer PING on %s within 15s (last: %v %v)\n%s", r.Addr, reply, err, r.Logs())
		}
	}
}

// Kill sends SIGKILL (no shutdown, no save) and waits for the process to
// be gone, so its port refuses connections when kill returns.
func (r *Server) Kill() {
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

// Pause stops redis-server with SIGSTOP: it keeps its connections and
// accepts new ones (the kernel does), but answers nothing until Resume, as
// a hung server does. Kill ends it paused or not.
func (r *Server) Pause() {
	r.t.Helper()
	r.signal(syscall.SIGSTOP)
}

// Resume continues a paused redis-server (SIGCONT).
func (r *Server) Resume() {
	r.t.Helper()
	r.signal(syscall.SIGCONT)
}

func (r *Server) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		r.t.Fatalf("redis-server on %s is not running", r.Addr)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signalling redis-server: %v", err)
	}
}

// Info returns one field of INFO ("used_memory", "evicted_keys").
func (r *Server) Info(t testing.TB, field string) string {
	t.Helper()
	s, _ := r.MustDo(t, "INFO").(string)
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	t.Fatalf("INFO has no field %q", field)
	return ""
}

// InfoInt is Info as a number.
func (r *Server) InfoInt(t testing.TB, field string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(r.Info(t, field), 10, 64)
	if err != nil {
		t.Fatalf("INFO %s: %v", field, err)
	}
	return n
}

// Restart kills redis-server and starts it again on the same port: with
// persist its data survives, without it Redis comes back empty.
func (r *Server) Restart() {
	r.t.Helper()
	r.Kill()
	r.Start()
}

// Logs is what redis-server wrote, over every start.
func (r *Server) Logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// Error is an error reply ("-ERR ...").
type Error string

func (e Error) Error() string { return string(e) }

// Do sends one command on a fresh connection and returns the reply:
// string (simple or bulk), int64, nil, []any, or an Error.
func (r *Server) Do(args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", r.Addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	writeCommand(&b, args)
	if r.Password != "" {
		b.Reset()
		writeCommand(&b, []string{"AUTH", r.Password})
		writeCommand(&b, args)
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	if r.Password != "" {
		if reply, err := readRESP(br); err != nil {
			return nil, err
		} else if e, ok := reply.(Error); ok {
			return nil, e
		}
	}
	reply, err := readRESP(br)
	if err != nil {
		return nil, err
	}
	if e, ok := reply.(Error); ok {
		return nil, e
	}
	return reply, nil
}

func writeCommand(b *bytes.Buffer, args []string) {
	fmt.Fprintf(b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(b, "$%d\r\n%s\r\n", len(a), a)
	}
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
		return Error(line[1:]), nil
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

// MustDo is Do failing the test on an error.
func (r *Server) MustDo(t testing.TB, args ...string) any {
	t.Helper()
	reply, err := r.Do(args...)
	if err != nil {
		t.Fatalf("redis %v: %v", args, err)
	}
	return reply
}

// XLen is the length of a stream.
func (r *Server) XLen(t testing.TB, key string) int64 {
	t.Helper()
	n, ok := r.MustDo(t, "XLEN", key).(int64)
	if !ok {
		t.Fatalf("XLEN %s: not an integer", key)
	}
	return n
}

// Get returns a string key's value, "" when it does not exist.
func (r *Server) Get(t testing.TB, key string) string {
	t.Helper()
	s, _ := r.MustDo(t, "GET", key).(string)
	return s
}

// Entry is one stream entry as XRANGE returns it.
type Entry struct {
	ID     string
	Fields map[string]string
}

// XRange is a whole stream.
func (r *Server) XRange(t testing.TB, key string) []Entry {
	t.Helper()
	reply, ok := r.MustDo(t, "XRANGE", key, "-", "+").([]any)
	if !ok {
		t.Fatalf("XRANGE %s: not an array", key)
	}
	var out []Entry
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
		out = append(out, Entry{ID: id, Fields: fields})
	}
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PushPastMaxmemory fills Redis with data and sets maxmemory below what is
// used, as when a write allowed just under the limit went past it: under
// noeviction every write that allocates is then refused with OOM. It checks
// that a SET is refused.
func (r *Server) PushPastMaxmemory(t testing.TB) {
	t.Helper()
	for i := 0; i < 200; i++ {
		r.MustDo(t, "SET", "filler:"+strconv.Itoa(i), strings.Repeat("x", 4096))
	}
	r.MustDo(t, "CONFIG", "SET", "maxmemory", strconv.FormatInt(r.InfoInt(t, "used_memory")-100_000, 10))
	if _, err := r.Do("SET", "probe", "x"); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("Redis is not over maxmemory: SET answered %v", err)
	}
}
