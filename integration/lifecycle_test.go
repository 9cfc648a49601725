package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A reload keeps the rings: open streams are closed with a retry hint,
// clients resume on the new configuration with nothing lost, and history
// from before the reload is still replayed.
func TestReloadKeepsHistoryAndClientsResume(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	pub := c.base + "/publish"
	s := subscribe(t, client, c.base+"/events?topic=news").ready()
	firstID := publishData(t, pub, "news", seqData(0)).ID
	for i := 1; i < 5; i++ {
		publishData(t, pub, "news", seqData(i))
	}
	lastID := ""
	for i := 0; i < 5; i++ {
		lastID = s.next().LastEventID
	}

	// A changed configuration (heartbeat differs) forces a real reload.
	c.reload(strings.Replace(basicSite, "heartbeat 200ms", "heartbeat 300ms", 1))
	if rest := s.waitEnd(); len(rest) != 0 {
		t.Fatalf("unexpected events at close: %+v", rest)
	}
	if !strings.Contains(s.rawString(), "\nretry: ") {
		t.Errorf("the stream was closed without a retry hint:\n%s", s.rawString())
	}
	// Published while the client is away: must be replayed on resume. The
	// reload closes idle keep-alive connections, so a POST may meet one
	// being closed (a reset, seen once in five runs beside a CPU hog): a
	// publisher retries connection errors (docs/publishing.md, "Across a
	// reload"). With an Idempotency-Key Go's transport does so itself, on a
	// fresh connection, and the hub would publish a repeat once.
	status, _, body := keyedPost(t, pub, `{"topic":"news","data":"`+seqData(5)+`"}`, "Idempotency-Key: after-reload")
	mustStatus(t, "publish after the reload", status, http.StatusOK, body)
	resumed := subscribe(t, client, c.base+"/events?topic=news", "Last-Event-ID: "+lastID).ready()
	if ev := resumed.next(); ev.Data != seqData(5) || ev.Type == "reset" {
		t.Fatalf("after reload got %+v, want %s", ev, seqData(5))
	}
	// History from before the reload is still there.
	old := subscribe(t, client, c.base+"/events?topic=news", "Last-Event-ID: "+firstID).ready()
	for i := 1; i <= 5; i++ {
		if ev := old.next(); ev.Data != seqData(i) {
			t.Fatalf("replay across reload: got %+v, want %s", ev, seqData(i))
		}
	}
}

// SIGTERM with many open streams: Caddy exits promptly and cleanly.
func TestShutdownWithOpenStreamsIsPrompt(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	const streams = 100
	subs := make([]*subscriber, streams)
	for i := range subs {
		subs[i] = subscribe(t, client, c.base+"/events?topic=news").ready()
	}
	took := c.stop(10 * time.Second)
	t.Logf("caddy exited %v after SIGTERM with %d open streams", took, streams)
	if c.exitErr != nil {
		t.Errorf("caddy exit: %v\n%s", c.exitErr, c.logs())
	}
	for _, s := range subs {
		s.waitEnd()
		if !strings.Contains(s.rawString(), "\nretry: ") {
			t.Fatalf("stream closed without a retry hint:\n%s", s.rawString())
		}
	}
}

// A subscriber that stops reading is dropped once its queue overflows and
// its write times out; a fast subscriber keeps getting every event and the
// publisher is never slowed to the slow one's pace.
func TestSlowSubscriberIsDroppedFastOneKeepsUp(t *testing.T) {
	t.Parallel()
	forEachDeadlineKeeper(t, testSlowSubscriberIsDropped)
}

// forEachDeadlineKeeper runs a test with write deadlines kept by Caddy's
// idle-timeout writer (the default) and by the stream itself (the server's
// write_idle timeout disabled).
func forEachDeadlineKeeper(t *testing.T, test func(t *testing.T, global string)) {
	for name, global := range map[string]string{
		"caddy idle writer": "",
		"own deadlines":     "servers {\n\t\ttimeouts {\n\t\t\twrite_idle -1s\n\t\t}\n\t}",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, global)
		})
	}
}

func testSlowSubscriberIsDropped(t *testing.T, global string) {
	c := startCaddyWith(t, global, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic firehose {
			replay 10
		}
		queue 8
		write_timeout 1s
		heartbeat off
	}
	sse_publish /publish {
		max_event 64KiB
	}
}
`)
	// The slow one: a raw connection with a tiny receive buffer that sends
	// its request and then never reads.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	slow, err := d.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	_ = slow.SetReadDeadline(time.Now().Add(eventWait)) // safety net
	br := bufio.NewReader(slow)
	for line := ""; line != ": caddy-sse\n"; { // registered once the opening arrives
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatalf("slow subscriber: %v", err)
		}
		line = strings.TrimPrefix(line, "d\r\n") // chunk size line of the opening
	}
	fast := subscribe(t, client, c.base+"/events").ready()

	const total = 400
	payload := strings.Repeat("x", 32<<10)
	// The fast subscriber is read on a goroutine of its own while this one
	// publishes. Its failure comes back on fastErr: t.Fatal (fast.next's)
	// must be called from the test's goroutine only.
	fastErr := make(chan error, 1)
	go func() {
		for i := 0; i < total; i++ {
			ev, err := fast.nextOrErr()
			if err == nil && !strings.HasPrefix(ev.Data, seqData(i)) {
				err = fmt.Errorf("event %d is %.20q", i, ev.Data)
			}
			if err != nil {
				fastErr <- fmt.Errorf("fast subscriber: %v", err)
				return
			}
		}
		fastErr <- nil
	}()
	minDelivered := 2
	for i := 0; i < total; i++ {
		res := publishData(t, c.base+"/publish", "firehose", seqData(i)+payload)
		minDelivered = min(minDelivered, res.Delivered)
	}
	if err := <-fastErr; err != nil {
		t.Fatal(err)
	}
	if minDelivered != 1 {
		t.Fatalf("the slow subscriber was never dropped (delivered stayed %d)", minDelivered)
	}
	// Its connection is closed: reading what was buffered ends in EOF.
	_ = slow.SetReadDeadline(time.Now().Add(eventWait))
	n, err := io.Copy(io.Discard, br)
	if err != nil {
		t.Fatalf("slow connection not closed by the server after %d bytes: %v", n, err)
	}
	if n >= int64(total*len(payload)) {
		t.Fatalf("slow subscriber received everything (%d bytes); it was not slow", n)
	}
}
