package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Churn: 5,000 subscribe/disconnect cycles, 50 at a time, in four ways of
// leaving, while a publisher publishes. Afterwards the hub holds no
// subscriber, Caddy's goroutines are back to the baseline taken after a
// warm-up, and its live heap has not grown beyond a generous bound.
func TestDrillChurn(t *testing.T) {
	const (
		cycles      = 5000
		warmup      = 250
		concurrency = 50
		// Goroutines allowed above the baseline: the admin request being
		// served, a connection or two still closing.
		goroutineMargin = 8
	)
	drillRaiseNofile(t, 4096)
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic churn news
		heartbeat 100ms
	}
	sse_publish /publish
}
`)
	addr := strings.TrimPrefix(c.base, "http://")

	// cycle opens one stream and leaves it in one of four ways.
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: concurrency}}
	cycle := func(ctx context.Context, i int) error {
		switch i % 4 {
		case 0: // reads the opening, then closes
			s, err := drillDialStream(ctx, nil, addr, "/events?topic=churn")
			if err != nil {
				return err
			}
			return s.conn.Close()
		case 1: // reads a live event (or heartbeat), then resets the connection
			s, err := drillDialStream(ctx, nil, addr, "/events?topic=churn")
			if err != nil {
				return err
			}
			_ = s.conn.SetReadDeadline(time.Now().Add(eventWait))
			for {
				line, err := s.br.ReadString('\n')
				if err != nil {
					s.conn.Close()
					return fmt.Errorf("waiting for an event: %w", err)
				}
				if strings.HasPrefix(line, "data: ") || line == ": heartbeat\n" {
					break
				}
			}
			_ = s.conn.(*net.TCPConn).SetLinger(0) // RST instead of FIN
			return s.conn.Close()
		case 2: // sends the request and closes without reading anything
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(conn, "GET /events?topic=churn HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
				conn.Close()
				return err
			}
			return conn.Close()
		default: // an http.Client whose request is cancelled after the opening
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events?topic=churn", nil)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %s", resp.Status)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != ": caddy-sse\n" {
				return fmt.Errorf("opening %q: %v", line, err)
			}
			cancel()
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
	}

	// run churns n cycles with a publisher going (paced by a ticker: the
	// scenario is a steady event rate, not a flood); it returns once the
	// publisher has stopped and its connection is closed.
	run := func(n int) (published int64, took time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		pubClient := &http.Client{Transport: &http.Transport{}}
		stop := make(chan struct{})
		pubErr := make(chan error, 1)
		var pubs atomic.Int64
		go func() {
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			defer pubClient.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					pubErr <- nil
					return
				case <-tick.C:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/publish?topic=churn", strings.NewReader(seqData(i)))
				req.Header.Set("Content-Type", "text/plain")
				resp, err := pubClient.Do(req)
				if err != nil {
					pubErr <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					pubErr <- fmt.Errorf("publish: %s", resp.Status)
					return
				}
				pubs.Add(1)
			}
		}()
		start := time.Now()
		var next atomic.Int64
		var failed atomic.Value
		var wg sync.WaitGroup
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n || failed.Load() != nil {
						return
					}
					if err := cycle(ctx, i); err != nil {
						failed.CompareAndSwap(nil, fmt.Errorf("cycle %d: %w", i, err))
						return
					}
				}
			}()
		}
		wg.Wait()
		took = time.Since(start)
		close(stop)
		if err := <-pubErr; err != nil {
			t.Fatalf("publisher: %v", err)
		}
		hc.CloseIdleConnections()
		if err, _ := failed.Load().(error); err != nil {
			t.Fatal(err)
		}
		return pubs.Load(), took
	}

	// settle waits for the hub to hold no subscriber and for the goroutine
	// count to come down to at most limit (or to stop falling when limit is
	// 0), polling the admin API.
	settle := func(limit int) (int, time.Duration) {
		t.Helper()
		drillWaitSubscribers(t, c, "default", 0, 15*time.Second)
		n, prev := 0, -1
		ok, took := drillPoll(15*time.Second, func() bool {
			n = drillGoroutines(t, c)
			if limit == 0 {
				stable := n == prev
				prev = n
				return stable
			}
			return n <= limit
		})
		if !ok {
			t.Fatalf("caddy has %d goroutines after 15s, want at most %d:\n%s", n, limit, drillGoroutineDump(t, c))
		}
		return n, took
	}

	run(warmup)
	baseGoroutines, _ := settle(0)
	baseHeap := drillHeapInuse(t, c, true)
	t.Logf("baseline after %d warm-up cycles: %d goroutines, HeapInuse %s", warmup, baseGoroutines, drillMiB(baseHeap))

	published, took := run(cycles)
	peakGoroutines := drillGoroutines(t, c)
	after, settleTook := settle(baseGoroutines + goroutineMargin)
	heap := drillHeapInuse(t, c, true)
	st := c.stats(t, "default")
	t.Logf("%d cycles in %v (%.0f/s) while %d events were published; goroutines: baseline %d, right after %d, settled to %d in %v; HeapInuse after GC: baseline %s, after %s; stats %+v",
		cycles, took.Round(time.Millisecond), float64(cycles)/took.Seconds(), published,
		baseGoroutines, peakGoroutines, after, settleTook.Round(time.Millisecond), drillMiB(baseHeap), drillMiB(heap), st)
	if st.Subscribers != 0 {
		t.Errorf("hub reports %d subscribers after churn, want 0", st.Subscribers)
	}
	// Generous: the ring (default 1000 events) and allocator slack may grow
	// a little; a leak of even a few KiB per cycle would not fit.
	if bound := baseHeap + 16<<20; heap > bound {
		t.Errorf("HeapInuse after churn is %s, above baseline %s + 16MiB", drillMiB(heap), drillMiB(baseHeap))
	}
	drillStillServes(t, c, "churn")
}
