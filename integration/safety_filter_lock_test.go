package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// hookedCaddy is Caddy built with -tags ssetesthooks: a filter pass of an
// event holding "filter-gate" waits on the FIFO named by
// SSE_TEST_FILTER_GATE (filter_hook_on.go).
var hookedCaddy struct {
	once sync.Once
	path string
	err  error
}

func buildHookedCaddy(t *testing.T) string {
	t.Helper()
	hookedCaddy.once.Do(func() {
		hookedCaddy.path = filepath.Join(filepath.Dir(caddyBin), "caddy-hooked")
		args := []string{"build", "-tags", "ssetesthooks", "-o", hookedCaddy.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, "../cmd/caddy")...)
		out, err := build.CombinedOutput()
		if err != nil {
			hookedCaddy.err = fmt.Errorf("building caddy with the test hooks: %v\n%s", err, out)
		}
	})
	if hookedCaddy.err != nil {
		t.Fatal(hookedCaddy.err)
	}
	return hookedCaddy.path
}

// filterLockSite: an sse route and an anonymous sse_mercure route on one
// hub.
const filterLockSite = `:{PORT} {
	sse /events {
		topic news
	}
	sse_publish /publish
	sse_mercure /.well-known/mercure {
		publisher_jwt ` + mercurePubKey + `
		subscriber_jwt ` + mercureSubKey + `
		anonymous
		protocol_version_compatibility 8
	}
}
`

// TestSafetyFilterOutsideHubLock (issue 16, holes 3 and 4): while an
// anonymous Mercure subscriber's filter is held (a test hook blocks it
// until released), a publish to an unrelated sse topic completes and
// reaches its subscriber, and a Mercure subscriber can still connect and
// replay "earliest". When the filter used to run under the hub-wide lock,
// both waited for it. Nothing is timed: the blocked Mercure publish is
// still blocked when the other calls have completed.
func TestSafetyFilterOutsideHubLock(t *testing.T) {
	bin := buildHookedCaddy(t)
	gate := filepath.Join(t.TempDir(), "filter-gate")
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSE_TEST_FILTER_GATE", gate)
	saved := caddyBin
	caddyBin = bin
	c := startCaddy(t, filterLockSite)
	caddyBin = saved
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		f, err := os.OpenFile(gate, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Errorf("releasing the filter: %v", err)
			return
		}
		_, _ = f.WriteString("go")
		f.Close()
	}
	defer release() // a failing test must not leave Caddy's goroutine blocked

	hub := c.base + "/.well-known/mercure"
	pub := mercureToken(t, mercurePubKey, false, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}}})

	// The hostile subscriber: anonymous, many URI templates, one of which
	// matches the update that will hold its filter.
	q := url.Values{}
	for i := range 30 {
		q.Add("topic", fmt.Sprintf("https://example.com/h%d/{a}/{b}/{c}", i))
	}
	q.Add("topic", "https://example.com/gated/{id}")
	hostile := subscribe(t, client, hub+"?"+q.Encode()).ready()
	news := subscribe(t, client, c.base+"/events?topic=news").ready()

	mercureDone := make(chan string, 1)
	go func() {
		status, body, _ := mercurePublish(t, hub, pub, update("https://example.com/gated/1", "filter-gate"))
		mercureDone <- fmt.Sprintf("%d %s", status, strings.TrimSpace(body))
	}()
	c.waitLog("sse test hook: filter blocked")

	// The unrelated publish completes while the filter is held. The
	// context is only the safety net of a failure (a publish stuck on
	// the hub's lock).
	ctx, cancel := context.WithTimeout(testCtx(t), eventWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/publish", strings.NewReader(`{"topic":"news","data":"unrelated"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("a publish to an unrelated topic did not complete while a Mercure filter was held: %v", err)
	}
	resp.Body.Close()
	mustStatus(t, "unrelated publish", resp.StatusCode, http.StatusOK, nil)
	if ev := news.next(); ev.Data != "unrelated" {
		t.Fatalf("news subscriber got %q", ev.Data)
	}
	// A Mercure subscriber with "earliest" registers and replays while
	// the filter is held: the replay is filtered outside the lock.
	early := subscribe(t, client, hub+"?topic="+url.QueryEscape("https://example.com/gated/{id}"), "Last-Event-ID: earliest").ready()
	select {
	case got := <-mercureDone:
		t.Fatalf("the Mercure publish finished (%s) before its filter was released: the hook did not hold it", got)
	default:
	}

	release()
	if got := <-mercureDone; !strings.HasPrefix(got, "200 ") {
		t.Fatalf("Mercure publish: %s", got)
	}
	if ev := hostile.next(); ev.Data != "filter-gate" {
		t.Fatalf("the hostile subscriber got %q, want the update its filter accepted", ev.Data)
	}
	// "earliest" either replayed the update or got it live: once.
	if ev := early.next(); ev.Data != "filter-gate" {
		t.Fatalf("the earliest subscriber got %q", ev.Data)
	}
}
