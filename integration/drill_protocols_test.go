package integration

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// drillProtocolsSite serves TLS on {PORT}: HTTP/1.1 and HTTP/2 over TCP, and
// HTTP/3 over UDP on the same port. write_timeout is shorter than the
// heartbeat, so a write deadline left armed while a stream idles would
// break it.
const drillProtocolsSite = `
https://127.0.0.1:{PORT} {
	tls {CERT} {KEY}
	sse /events {
		topic news
		heartbeat 400ms
		write_timeout 250ms
	}
	sse_publish /publish
}
`

// newH3Client is a real HTTP/3 client (quic-go's), trusting the test
// certificate.
func drillH3Client(t *testing.T) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

// waitCount waits until the raw stream holds n occurrences of substr.
func (s *subscriber) drillWaitCount(substr string, n int) {
	s.t.Helper()
	s.awaitRaw(fmt.Sprintf("%d %q", n, substr), func(raw string) bool { return strings.Count(raw, substr) >= n })
}

// Events are flushed one by one over HTTP/2 and HTTP/3 with real clients:
// each is published only once the previous one has arrived. Streams idle
// across several heartbeats, longer than write_timeout, and keep working.
func TestDrillHTTP2AndHTTP3(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, drillProtocolsSite)
	base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
	h3 := drillH3Client(t)

	for _, tc := range []struct {
		name  string
		c     *http.Client
		major int
	}{
		{"HTTP/2", h2Client, 2},
		{"HTTP/3", h3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := subscribe(t, tc.c, base+"/events?topic=news").ready()
			if s.resp.ProtoMajor != tc.major {
				t.Fatalf("subscribed over %s, want HTTP/%d", s.resp.Proto, tc.major)
			}
			start := time.Now()
			awaitEachEvent(t, s, tc.c, base+"/publish?topic=news", 50)
			t.Logf("50 events published and received one by one over %s in %v", s.resp.Proto, time.Since(start).Round(time.Millisecond))

			// Idle through two heartbeats (each after 400ms of silence,
			// longer than write_timeout), then an event still arrives.
			s.drillWaitCount(": heartbeat\n", 2)
			status, body := post(t, tc.c, base+"/publish?topic=news", "text/plain", stringsReader("after idling"))
			mustStatus(t, "publish after idling", status, http.StatusOK, body)
			if ev := s.next(); ev.Data != "after idling" {
				t.Fatalf("after idling got %+v", ev)
			}
		})
	}
}

// A reload and a SIGTERM with only HTTP/3 streams open: the reload closes
// them with a retry: hint, and Caddy exits promptly. Several Caddys are
// drilled at once, because the order in which Caddy stops its apps (a map
// iteration) varies from run to run.
func TestDrillHTTP3StreamsOnReloadAndShutdown(t *testing.T) {
	t.Parallel()
	const (
		caddys  = 6
		streams = 3
	)
	procs := make([]*caddyProc, caddys)
	for i := range procs {
		c := startCaddy(t, drillProtocolsSite)
		procs[i] = c
		base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
		h3 := drillH3Client(t)

		s := subscribe(t, h3, base+"/events?topic=news").ready()
		if s.resp.ProtoMajor != 3 {
			t.Fatalf("subscribed over %s, want HTTP/3", s.resp.Proto)
		}
		c.reload(strings.Replace(drillProtocolsSite, "heartbeat 400ms", "heartbeat 500ms", 1))
		s.waitEnd()
		if !strings.Contains(s.rawString(), "\nretry: ") {
			t.Errorf("reload closed the HTTP/3 stream without a retry: hint:\n%s", s.rawString())
		}
		// A fresh client: the reload may be closing the old QUIC
		// connection (H3_NO_ERROR) just as a request is sent on it, which
		// a browser would retry and this test need not race.
		h3 = drillH3Client(t)
		for j := 0; j < streams; j++ {
			subscribe(t, h3, base+"/events?topic=news").ready()
		}
	}

	start := time.Now()
	for _, c := range procs {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := make(chan struct{}) // the safety net, for all of them
	defer time.AfterFunc(5*time.Second, func() { close(deadline) }).Stop()
	exitedAfter := make([]time.Duration, caddys) // 0: still running
	var wg sync.WaitGroup
	for i, c := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-c.exited:
				exitedAfter[i] = time.Since(start)
			case <-deadline:
			}
		}()
	}
	wg.Wait()
	var took []string
	hung := 0
	for i, c := range procs {
		if exitedAfter[i] == 0 {
			took = append(took, "hung")
			hung++
			continue
		}
		took = append(took, exitedAfter[i].Round(time.Millisecond).String())
		if c.exitErr != nil {
			t.Errorf("caddy on port %d: exit status %v", c.port, c.exitErr)
		}
	}
	t.Logf("SIGTERM to %d Caddys with %d open HTTP/3 streams each: exited after %s", caddys, streams, strings.Join(took, ", "))
	if hung > 0 {
		t.Errorf("%d of %d Caddys were still running 5s after SIGTERM with only HTTP/3 streams open", hung, caddys)
	}
}
