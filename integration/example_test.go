package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exampleEnv is the variables Caddyfile.example reads.
var exampleEnv = []string{"PORT", "BIND", "CADDY_ADMIN"}

// envWith is this process's environment without names, plus set
// ("NAME=value"): what a user's shell would pass.
func envWith(names []string, set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}

// exampleListens adapts ../Caddyfile.example with the real binary under
// env and returns the admin address and the site's listen addresses.
func exampleListens(t *testing.T, env ...string) (admin string, listen []string) {
	t.Helper()
	cmd := exec.CommandContext(testCtx(t), caddyBin, "adapt", "--config", "../Caddyfile.example")
	cmd.Env = envWith(exampleEnv, env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("caddy adapt Caddyfile.example: %v", err)
	}
	var cfg struct {
		Admin struct{ Listen string }
		Apps  struct {
			HTTP struct {
				Servers map[string]struct{ Listen []string }
			}
		}
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, out)
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		listen = append(listen, srv.Listen...)
	}
	return cfg.Admin.Listen, listen
}

// The demo listens on this machine only, on 8080 with its admin endpoint
// on 2019, unless PORT, BIND and CADDY_ADMIN say otherwise.
func TestExampleCaddyfileListensOnLoopbackUnlessTold(t *testing.T) {
	t.Parallel()
	admin, listen := exampleListens(t)
	if admin != "localhost:2019" || !slices.Equal(listen, []string{"127.0.0.1:8080"}) {
		t.Errorf("by default: admin %q, site listening on %q; want localhost:2019 and [127.0.0.1:8080]", admin, listen)
	}
	admin, listen = exampleListens(t, "PORT=9123", "BIND=0.0.0.0", "CADDY_ADMIN=127.0.0.1:2999")
	if admin != "127.0.0.1:2999" || !slices.Equal(listen, []string{"0.0.0.0:9123"}) {
		t.Errorf("with PORT, BIND and CADDY_ADMIN: admin %q, site listening on %q; want 127.0.0.1:2999 and [0.0.0.0:9123]", admin, listen)
	}
}

// The README's first command, `caddy run --config Caddyfile.example` from
// the repository, with PORT and CADDY_ADMIN moving it to free ports: the
// demo page and its stream answer on loopback, the admin endpoint where
// CADDY_ADMIN says, and no other address of this machine answers.
func TestExampleCaddyfileRunsWhereTold(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	p := &caddyProc{t: t, dir: t.TempDir(), port: freePort(t), exited: make(chan struct{}), logGrew: make(chan struct{})}
	p.adminAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p.base = fmt.Sprintf("http://127.0.0.1:%d", p.port)
	p.cmd = exec.Command(caddyBin, "run", "--config", "Caddyfile.example")
	p.cmd.Dir = root
	p.cmd.Env = envWith(exampleEnv, fmt.Sprintf("PORT=%d", p.port), "CADDY_ADMIN="+p.adminAddr,
		"HOME="+p.dir, "XDG_DATA_HOME="+p.dir, "XDG_CONFIG_HOME="+p.dir)
	p.run()

	// The page, by the address the example's comment gives.
	status, body := get(t, fmt.Sprintf("http://localhost:%d/", p.port))
	if status != http.StatusOK || !strings.Contains(body, "<title>caddy-sse") {
		t.Fatalf("GET / answered %d:\n%.300s", status, body)
	}
	// Its stream and its publish route.
	s := subscribe(t, client, p.base+"/events?topic=notifications").ready()
	if r := publishData(t, p.base+"/_sse/publish", "notifications", "hello"); r.Delivered != 1 {
		t.Fatalf("published to %d subscribers, want 1", r.Delivered)
	}
	if ev := s.next(); ev.Data != "hello" {
		t.Fatalf("the stream got %q, want hello", ev.Data)
	}
	// The admin endpoint moved.
	status, body = get(t, "http://"+p.adminAddr+"/config/apps/http/servers/srv0/listen")
	if want := fmt.Sprintf(`["127.0.0.1:%d"]`, p.port); status != http.StatusOK || strings.TrimSpace(body) != want {
		t.Fatalf("admin endpoint: %d %s, want the site listening on %s", status, body, want)
	}
	// Another address of this machine is refused.
	ip := nonLoopbackAddr(t)
	if ip == "" {
		t.Log("this machine has no address but loopback: the refusal from another one is not checked")
		return
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(p.port)), 5*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("the demo answers on %s, not on loopback only", ip)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connecting to %s: %v, want connection refused", ip, err)
	}
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// nonLoopbackAddr returns an IPv4 address of this machine's that is not a
// loopback one, or "".
func nonLoopbackAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}
