package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/testneeds"
)

const http10Site = `
http://127.0.0.1:{PORT} {
	sse /events {
		topic news
		heartbeat off
	}
	sse_publish /publish
}
`

// readHeaders reads a response's status line and headers.
func readHeaders(t *testing.T, br *bufio.Reader) (string, map[string]string) {
	t.Helper()
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	hdr := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("headers: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return strings.TrimSpace(status), hdr
		}
		k, v, _ := strings.Cut(line, ":")
		hdr[strings.ToLower(k)] = strings.TrimSpace(v)
	}
}

// An HTTP/1.0 client (nginx's default towards upstreams) gets an unframed
// stream: no chunk-size lines in a body that is not chunked, and the stream
// ends when the connection closes.
func TestHTTP10SubscriberGetsAnUnframedStream(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, http10Site)
	addr := strings.TrimPrefix(c.base, "http://")
	br := rawRequest(t, addr, "GET /events?topic=news HTTP/1.0\r\nHost: "+addr+"\r\n\r\n")
	status, hdr := readHeaders(t, br)
	if !strings.HasPrefix(status, "HTTP/1.0 200") {
		t.Fatalf("status %q", status)
	}
	if te := hdr["transfer-encoding"]; te != "" {
		t.Fatalf("Transfer-Encoding %q on an HTTP/1.0 response", te)
	}
	opening := make([]byte, len(": caddy-sse\n\n"))
	if _, err := io.ReadFull(br, opening); err != nil || string(opening) != ": caddy-sse\n\n" {
		t.Fatalf("body starts %q (%v), want the opening comment unframed", opening, err)
	}
	res := publishData(t, c.base+"/publish", "news", "over 1.0")
	want := fmt.Sprintf("id: %s\ndata: over 1.0\n\n", res.ID)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("event bytes %q (%v), want %q", got, err, want)
	}
	// Shutting the stream down ends the body with the connection, with
	// nothing after the last event but the reconnect hint.
	c.stop(10 * time.Second)
	rest, _ := io.ReadAll(br)
	if strings.Contains(string(rest), "0\r\n") {
		t.Fatalf("a chunked terminator on an HTTP/1.0 stream: %q", rest)
	}
}

// nginxPath finds nginx, which these tests use as a proxy speaking
// HTTP/1.0 to Caddy: on CI its absence is a failure, elsewhere a skip
// reported at the end of the run.
func nginxPath(t *testing.T) string {
	t.Helper()
	return testneeds.Binary(t, "nginx", "the nginx proxy tests", "apt-get install -y nginx-light")
}

// Through nginx with its default upstream protocol (HTTP/1.0), a WHATWG
// client reads exactly the events published.
func TestHTTP10ThroughNginx(t *testing.T) {
	t.Parallel()
	bin := nginxPath(t)
	c := startCaddy(t, http10Site)
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`
daemon off;
master_process off;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s;
	proxy_temp_path %[1]s;
	fastcgi_temp_path %[1]s;
	uwsgi_temp_path %[1]s;
	scgi_temp_path %[1]s;
	server {
		listen 127.0.0.1:%[2]d;
		location / {
			proxy_pass %[3]s;
			proxy_buffering off;
		}
	}
}
`, dir, port, c.base)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if ok, _ := drillPoll(10*time.Second, func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}); !ok {
		t.Fatalf("nginx did not listen: %s", out)
	}

	s := subscribe(t, client, "http://"+addr+"/events?topic=news").ready()
	for i := 0; i < 3; i++ {
		res := publishData(t, c.base+"/publish", "news", seqData(i)+"\nsecond line")
		ev := s.next()
		if ev.LastEventID != res.ID || ev.Data != seqData(i)+"\nsecond line" {
			t.Fatalf("event %d through nginx: id %q data %q; want %q", i, ev.LastEventID, ev.Data, res.ID)
		}
	}
	if raw := s.rawString(); strings.Contains(raw, "\r\n") {
		t.Fatalf("chunk framing leaked into the stream: %q", raw)
	}
}

// A client that sends bytes up its stream is not an EventSource: its stream
// is closed at once, not read a byte at a time.
func TestSubscriberSendingUpstreamIsClosed(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, http10Site)
	addr := strings.TrimPrefix(c.base, "http://")
	rs, err := drillDialStream(testCtx(t), nil, addr, "/events?topic=news")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.conn.Close()
	drillWaitSubscribers(t, c, "default", 1, eventWait)
	// Pushed from another goroutine: once Caddy closes, writes fail.
	go func() {
		junk := make([]byte, 64<<10)
		for i := 0; i < 1024; i++ { // at most 64 MiB
			if _, err := rs.conn.Write(junk); err != nil {
				return
			}
		}
	}()
	if _, err := rs.rest(eventWait); err != nil && !isConnReset(err) {
		t.Fatalf("the stream stayed open while its client pushed bytes up it: %v", err)
	}
	drillWaitSubscribers(t, c, "default", 0, eventWait)
}

// isConnReset: a server closing a socket that still has unread bytes
// sends a reset, which a reader sees instead of EOF.
func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
