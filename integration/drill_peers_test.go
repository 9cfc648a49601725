package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// drillProxy sits between one client and Caddy on loopback and plays a bad
// network: it can stop reading from Caddy for good without closing anything
// (a peer that vanished), or pass Caddy's bytes on at a few KB/s.
type drillProxy struct {
	ln     net.Listener
	target string

	blackhole  chan struct{} // closed: never read from Caddy again
	unthrottle chan struct{} // closed: forward at full speed
	rate       int           // bytes per tick while throttled; 0 = unthrottled

	mu       sync.Mutex
	up, down net.Conn      // to Caddy, to the client
	fwdDone  chan struct{} // the Caddy-to-client forwarder has returned
}

const drillProxyTick = 50 * time.Millisecond

func drillStartProxy(t *testing.T, target string, rate int) *drillProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &drillProxy{ln: ln, target: target, rate: rate,
		blackhole: make(chan struct{}), unthrottle: make(chan struct{}), fwdDone: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.up != nil {
			p.up.Close()
			p.down.Close()
		}
	})
	go p.serve()
	return p
}

func (p *drillProxy) addr() string { return p.ln.Addr().String() }

// serve proxies the first connection only.
func (p *drillProxy) serve() {
	down, err := p.ln.Accept()
	if err != nil {
		close(p.fwdDone)
		return
	}
	p.ln.Close()
	// A tiny receive buffer towards Caddy: once the proxy stops or slows
	// reading, Caddy's writes block soon, as with a real stalled peer.
	up, err := drillSmallRcvbuf().Dial("tcp", p.target)
	if err != nil {
		down.Close()
		close(p.fwdDone)
		return
	}
	p.mu.Lock()
	p.up, p.down = up, down
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, down) }() // the request
	defer close(p.fwdDone)
	buf := make([]byte, 32<<10)
	var tick *time.Ticker
	if p.rate > 0 {
		tick = time.NewTicker(drillProxyTick)
		defer tick.Stop()
	}
	for {
		chunk := buf
		if tick != nil {
			select {
			case <-p.unthrottle:
				tick.Stop()
				tick = nil
			default:
				chunk = buf[:p.rate]
			}
		}
		n, err := up.Read(chunk)
		select {
		case <-p.blackhole:
			return // stop reading from Caddy; close nothing
		default:
		}
		if n > 0 {
			if _, werr := down.Write(chunk[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// Caddy closed: pass the close on to the client.
			_ = down.(*net.TCPConn).CloseWrite()
			return
		}
		if tick != nil {
			select {
			case <-tick.C:
			case <-p.unthrottle:
			}
		}
	}
}

// drainUpstream, for a blackholed proxy, reads what Caddy had sent into
// the void and reports whether Caddy has closed the connection (EOF) within
// limit.
func (p *drillProxy) drainUpstream(limit time.Duration) (int64, error) {
	select {
	case <-p.fwdDone:
	case <-time.After(limit):
		return 0, errors.New("the forwarder did not stop")
	}
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	if up == nil {
		return 0, errors.New("no connection was proxied")
	}
	_ = up.SetReadDeadline(time.Now().Add(limit))
	return io.Copy(io.Discard, up)
}

// Slow and dead peers next to a fast one: (a) a subscriber that stops
// reading, (b) one whose peer vanishes (a proxy that stops reading from
// Caddy and never closes), (c) one on a socket throttled to a few KB/s. The
// fast subscriber gets every event, every publish answers 200, each bad
// peer is dropped within queue + write_timeout and its connection closed
// by Caddy, and memory stays bounded.
//
// Not parallel: the publish durations it logs are meant to show the slow
// peers' effect, not CPU contention with other tests.
func TestDrillSlowAndDeadPeers(t *testing.T) {
	const (
		total        = 400
		writeTimeout = time.Second
		heapBound    = 128 << 20 // generous: the ring holds at most 10 events, each queue 16
	)
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic firehose news {
			replay 10
		}
		queue 16
		write_timeout 1s
		heartbeat off
	}
	sse_publish /publish {
		max_event 64KiB
	}
}
`)
	addr := strings.TrimPrefix(c.base, "http://")
	ctx := testCtx(t)

	// (a) stops reading after the opening, on a tiny receive buffer.
	stalled, err := drillDialStream(ctx, drillSmallRcvbuf(), addr, "/events?topic=firehose")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.conn.Close()

	// (b) its peer vanishes once the opening has arrived.
	bh := drillStartProxy(t, addr, 0)
	vanished := subscribe(t, client, "http://"+bh.addr()+"/events?topic=firehose").ready()
	close(bh.blackhole)
	_ = vanished

	// (c) a few KB/s: 256 bytes every 50ms.
	th := drillStartProxy(t, addr, 256)
	throttled := subscribe(t, client, "http://"+th.addr()+"/events?topic=firehose").ready()

	fast := subscribe(t, client, c.base+"/events?topic=firehose").ready()
	before := c.stats(t, "default")
	if before.Subscribers != 4 {
		t.Fatalf("hub reports %d subscribers, want 4", before.Subscribers)
	}

	// The fast one must get every event, in order.
	fastErr := make(chan error, 1)
	go func() {
		timer := time.NewTimer(60 * time.Second)
		defer timer.Stop()
		for i := 0; i < total; i++ {
			select {
			case ev, ok := <-fast.events:
				if !ok {
					fastErr <- fmt.Errorf("the fast stream ended after %d events", i)
					return
				}
				if !strings.HasPrefix(ev.Data, seqData(i)+":") {
					fastErr <- fmt.Errorf("fast subscriber: event %d is %.20q", i, ev.Data)
					return
				}
			case <-timer.C:
				fastErr <- fmt.Errorf("fast subscriber: only %d of %d events within 60s", i, total)
				return
			}
		}
		fastErr <- nil
	}()

	// Caddy's heap, sampled while the publisher runs.
	stopSampling := make(chan struct{})
	peakHeap := make(chan uint64, 1)
	go func() {
		var peak uint64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := drillHeapInuseErr(c); err == nil {
				peak = max(peak, n)
			}
			select {
			case <-stopSampling:
				peakHeap <- peak
				return
			case <-tick.C:
			}
		}
	}()

	payload := strings.Repeat("x", 32<<10)
	durations := make([]time.Duration, 0, total)
	pubStart := time.Now()
	minDelivered := 4
	var drops []string // when each bad peer stopped being delivered to
	for i := 0; i < total; i++ {
		t0 := time.Now()
		res := publishData(t, c.base+"/publish", "firehose", seqData(i)+":"+payload) // fails the test unless 200
		durations = append(durations, time.Since(t0))
		if d := durations[i]; d > 100*time.Millisecond {
			t.Logf("publish %d took %v, %v after the first", i, d.Round(time.Millisecond), t0.Sub(pubStart).Round(time.Millisecond))
		}
		if res.Delivered < minDelivered {
			drops = append(drops, fmt.Sprintf("%d left at publish %d (+%v)", res.Delivered, i, t0.Sub(pubStart).Round(time.Millisecond)))
		}
		minDelivered = min(minDelivered, res.Delivered)
	}
	pubEnd := time.Now()
	if err := <-fastErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d publishes of %d KiB in %v: %s; subscribers delivered to: %s", total, len(payload)>>10,
		pubEnd.Sub(pubStart).Round(time.Millisecond), drillDurations(durations), strings.Join(drops, ", "))

	// Each bad peer is gone within write_timeout (plus a margin for -race)
	// after the last publish.
	gone := drillWaitSubscribers(t, c, "default", 1, writeTimeout+5*time.Second)
	after := c.stats(t, "default")
	t.Logf("slow subscribers gone %v after the last publish; dropped_slow %d -> %d",
		gone.Round(time.Millisecond), before.DroppedSlow, after.DroppedSlow)
	if after.DroppedSlow <= before.DroppedSlow {
		t.Errorf("dropped_slow did not increase (%d -> %d)", before.DroppedSlow, after.DroppedSlow)
	}

	// (a) Caddy closed the connection: what was buffered ends in EOF.
	rest, err := stalled.rest(writeTimeout + 5*time.Second)
	if err != nil {
		t.Errorf("(a) the stalled subscriber's connection is still open: %v", err)
	}
	if len(rest) >= total*len(payload) {
		t.Errorf("(a) the stalled subscriber received everything (%d bytes); it was not slow", len(rest))
	}

	// (b) Caddy closed its side of the vanished peer's connection.
	n, err := bh.drainUpstream(writeTimeout + 5*time.Second)
	if err != nil {
		t.Errorf("(b) the vanished peer's connection was not closed by Caddy (%d bytes drained): %v", n, err)
	}

	// (c) Once the throttle is lifted, the rest arrives and the stream
	// ends: Caddy closed it. What arrived is a prefix of the events, in
	// order, with no gap.
	close(th.unthrottle)
	got := throttled.waitEnd()
	for i, ev := range got {
		if !strings.HasPrefix(ev.Data, seqData(i)+":") {
			t.Errorf("(c) throttled subscriber: event %d is %.20q", i, ev.Data)
			break
		}
	}
	if len(got) >= total {
		t.Errorf("(c) the throttled subscriber received all %d events; it was not slow", total)
	}

	close(stopSampling)
	peak := <-peakHeap
	settled := drillHeapInuse(t, c, true)
	t.Logf("(a) got %d KiB before its close, (b) %d KiB drained, (c) %d events; HeapInuse peak %s while publishing, %s after GC",
		len(rest)>>10, n>>10, len(got), drillMiB(peak), drillMiB(settled))
	if peak > heapBound {
		t.Errorf("HeapInuse peaked at %s, above %s", drillMiB(peak), drillMiB(heapBound))
	}
	drillStillServes(t, c, "slow and dead peers")
}
