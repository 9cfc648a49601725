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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/testneeds"
)

// caddyBin is the Caddy built from ../cmd/caddy for this test run.
var caddyBin string

// certFile and keyFile are a self-signed certificate for 127.0.0.1, used by
// TLS sites as "tls {CERT} {KEY}": Caddy loads it while provisioning, so TLS
// is ready when Caddy says it serves (an issued certificate would arrive
// asynchronously, with no signal when it is cached).
var certFile, keyFile string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "caddy-sse-it")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy")
	if certFile, keyFile, err = writeSelfSignedCert(dir); err != nil {
		fmt.Fprintln(os.Stderr, "making a test certificate:", err)
		os.Exit(1)
	}
	args := []string{"build", "-o", caddyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/caddy")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := testneeds.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// caddyProc is one running Caddy process serving a test's Caddyfile.
type caddyProc struct {
	t         *testing.T
	cmd       *exec.Cmd
	dir       string
	port      int    // the site port, {PORT} in a test's Caddyfile
	port2     int    // a second site port, {PORT2}
	adminAddr string // admin API address
	base      string // http://127.0.0.1:port
	global    string // extra global options
	exited    chan struct{}
	exitErr   error

	mu      sync.Mutex
	log     bytes.Buffer
	logGrew chan struct{} // closed and replaced on every log line
}

// freePort asks the kernel for an unused loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may hand a closed port out again, and Caddy binds
		// with SO_REUSEPORT: two parallel tests' Caddies on one port
		// would share its connections (a subscribe reaching the other
		// test's site answered 404 in one CI run). A port is handed out
		// once per test binary.
		if !portsUsed[port] {
			portsUsed[port] = true
			return port
		}
	}
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// globalOptions keep a test's Caddy on loopback, out of the user's trust
// store and data directories.
// extra is more global options, for tests that need them.
func globalOptions(adminAddr, extra string) string {
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	skip_install_trust
	local_certs
	auto_https disable_redirects
	%s
}
`, adminAddr, extra)
}

// startCaddy runs Caddy with site, a Caddyfile fragment in which {PORT} is
// replaced by a free port; it returns once Caddy serves the configuration.
func startCaddy(t *testing.T, site string) *caddyProc {
	t.Helper()
	return startCaddyWith(t, "", site)
}

// startCaddyWith is startCaddy with extra global options.
func startCaddyWith(t *testing.T, global, site string) *caddyProc {
	t.Helper()
	p := newCaddyProc(t, global)
	p.start(caddyBin, p.caddyfile(site))
	return p
}

// newCaddyProc picks a process's ports and directory; start runs it.
func newCaddyProc(t *testing.T, global string) *caddyProc {
	p := &caddyProc{global: global, t: t, dir: t.TempDir(), port: freePort(t), port2: freePort(t), exited: make(chan struct{}), logGrew: make(chan struct{})}
	p.adminAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p.base = fmt.Sprintf("http://127.0.0.1:%d", p.port)
	return p
}

// start runs bin (this project's Caddy, or Mercure's for the oracle) with
// the Caddyfile cfg in p's own directory, and returns once it serves.
func (p *caddyProc) start(bin, cfg string) {
	t := p.t
	t.Helper()
	cfgPath := filepath.Join(p.dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	p.cmd.Dir = p.dir
	p.cmd.Env = append(os.Environ(), "HOME="+p.dir, "XDG_DATA_HOME="+p.dir, "XDG_CONFIG_HOME="+p.dir)
	p.run()
}

// run starts p.cmd and returns once Caddy serves its configuration; the
// test's cleanup kills it.
func (p *caddyProc) run() {
	t := p.t
	t.Helper()
	// Caddy writes into an io.Pipe rather than cmd.StderrPipe: Wait closes
	// the latter as soon as the process exits and the last lines (those of
	// a shutdown) would be lost. exited is closed once the log is complete.
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		p.readLog(pr, ready)
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner must not block Caddy
		close(readDone)
	}()
	go func() {
		err := p.cmd.Wait()
		pw.Close()
		<-readDone
		p.exitErr = err
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("%s exited before serving: %v\n%s", filepath.Base(p.cmd.Path), p.exitErr, p.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not become ready\n%s", filepath.Base(p.cmd.Path), p.logs())
	}
}

func (p *caddyProc) caddyfile(site string) string {
	site = strings.NewReplacer("{PORT2}", fmt.Sprint(p.port2), "{CERT}", certFile, "{KEY}", keyFile).Replace(site)
	return globalOptions(p.adminAddr, p.global) + strings.ReplaceAll(site, "{PORT}", fmt.Sprint(p.port))
}

// readLog keeps Caddy's log for failure messages and signals readiness when
// Caddy says it serves its configuration.
func (p *caddyProc) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	once := sync.Once{}
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.log.WriteString(line + "\n")
		close(p.logGrew)
		p.logGrew = make(chan struct{})
		p.mu.Unlock()
		if strings.Contains(line, "serving initial configuration") {
			once.Do(func() { close(ready) })
		}
	}
}

// waitLog waits until Caddy has logged a line containing substr.
func (p *caddyProc) waitLog(substr string) {
	p.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		p.mu.Lock()
		found, grew := strings.Contains(p.log.String(), substr), p.logGrew
		p.mu.Unlock()
		if found {
			return
		}
		select {
		case <-grew:
		case <-p.exited:
			p.t.Fatalf("caddy exited before logging %q", substr)
		case <-deadline:
			p.t.Fatalf("caddy did not log %q\n%s", substr, p.logs())
		}
	}
}

func (p *caddyProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// reload loads a new site fragment through the admin API; it returns once
// the new configuration runs.
func (p *caddyProc) reload(site string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.adminAddr+"/load", strings.NewReader(p.caddyfile(site)))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("reload: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		p.t.Fatalf("reload: %s: %s", resp.Status, body)
	}
	// The old server closes its idle keep-alive connections, and a POST on
	// one of them would fail without a retry (as with any server reload).
	client.CloseIdleConnections()
	h2Client.CloseIdleConnections()
}

// stop sends SIGTERM and waits for the process to exit, failing the test if
// it takes longer than limit.
func (p *caddyProc) stop(limit time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(limit):
		p.t.Fatalf("caddy did not exit within %v of SIGTERM\n%s", limit, p.logs())
	}
	return time.Since(start)
}

func (p *caddyProc) kill() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if p.t.Failed() { // the tail: several Caddys may fail at once
		lines := strings.Split(strings.TrimSpace(p.logs()), "\n")
		p.t.Logf("caddy on port %d, last lines of its log:\n%s", p.port, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	if strings.Contains(p.logs(), "DATA RACE") {
		p.t.Errorf("the race detector reported a race in caddy:\n%s", p.logs())
	}
}

// ctx returns a context bounded by the test's deadline safety net.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// hubStats is one hub's entry of the admin API's GET /sse/stats.
type hubStats struct {
	Engine      string `json:"engine"` // "memory" or "redis"
	Connected   bool   `json:"connected"`
	LastError   string `json:"last_error"`
	Epoch       string `json:"epoch"`
	LastID      string `json:"last_id"`
	Topics      int    `json:"topics"`
	Subscribers int    `json:"subscribers"`
	Published   uint64 `json:"published"`
	DroppedSlow uint64 `json:"dropped_slow"`
}

// stats reads a hub's statistics from the admin API; t is the calling
// (sub)test, which a failure stops.
func (p *caddyProc) stats(t *testing.T, hub string) hubStats {
	t.Helper()
	var out struct {
		Hubs map[string]hubStats `json:"hubs"`
	}
	if err := json.Unmarshal(drillAdminGet(t, p, "/sse/stats"), &out); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return out.Hubs[hub]
}
