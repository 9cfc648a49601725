package stream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"
	"go.uber.org/zap"
)

// The fan-out hot path as a user's traffic exercises it: one publish to a
// topic with N subscribers, each an HTTP/1.1 event stream on its own
// loopback TCP connection, served by a real net/http server whose handler
// subscribes and calls Streamer.Stream as the sse route does. One op is one
// publish read by all N clients; ns/delivery and allocs/delivery divide by
// N. Re-run and compare with (bench/NOTES.md, "Fan-out hot path, in
// process"):
//
//	go test -run '^$' -bench FanoutHotPath -benchmem -benchtime 1s -count 6 ./internal/stream
//
// Coalescing is off (0). With the default window (10ms), a stream last
// written more than a window ago takes this same path (the publisher writes
// it at once, Subscription.SetWriteNow), which is what the bench's fan-out
// scenario sees (one publish a second); back-to-back publishes would instead
// measure the window.
//
// Allocations are counted process-wide, so they include the readers; the
// readers allocate nothing per event (a fixed buffer, a byte count, an
// atomic), which BenchmarkFanoutReaderFloor checks: the same readers fed by
// a bare socket writer instead of the hub and streamer.

// fanoutMarker ends every published event's data and appears nowhere else
// in a stream (ids are "<base32 epoch>-<seq>", chunk sizes hex, comments
// ": caddy-sse" and ": heartbeat"): a reader counts events by counting it,
// wherever read boundaries fall.
const fanoutMarker = '~'

var fanoutData = strings.Repeat("x", 200) + string(fanoutMarker)

func BenchmarkFanoutHotPath(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			needDescriptors(b, n)
			benchFanout(b, n)
		})
	}
}

func benchFanout(b *testing.B, n int) {
	h := hub.NewHub()
	defer h.Close()
	refs := []hub.TopicRef{{Name: "bench", Ring: hub.DefaultRingConfig()}}
	st := &stream.Streamer{
		QueueSize:    stream.DefaultQueueSize,
		WriteTimeout: stream.DefaultWriteTimeout,
		Heartbeat:    stream.DefaultHeartbeat,
		Logger:       zap.NewNop(),
	}
	var ended atomic.Int64 // streams whose release ran
	allEnded := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the sse route does once it has resolved the topics
		// (subscribe.go, SSEHandler.ServeHTTP).
		if stream.Headers(w, r, "no-cache, no-transform") {
			return
		}
		if !st.Enter() {
			http.Error(w, "no room", http.StatusServiceUnavailable)
			return
		}
		sub, replay, err := h.SubscribeWith(refs, hub.SubscribeOptions{QueueLen: stream.DefaultQueue})
		if err != nil {
			st.Leave()
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		release := func() {
			st.Leave()
			if ended.Add(1) == int64(n) {
				close(allEnded)
			}
		}
		_ = st.Stream(w, r, sub, replay, refs, time.Time{}, release)
	}))
	defer srv.Close()

	f := newFanoutReaders(n)
	defer f.stop(b)
	// One dial at a time: a thousand at once overflow the listen backlog
	// and wait out SYN retries.
	for i := range n {
		f.dial(b, srv.Listener.Addr().String(), i)
	}
	waitOrFail(b, &f.ready, "every reader's opening")

	pubs := []hub.Publication{{Message: &hub.Message{Topics: []string{"bench"}, Data: fanoutData}, Topics: refs}}
	ctx := context.Background()
	publish := func() error {
		f.left.Store(int64(n))
		out, err := h.Publish(ctx, pubs, hub.PublishOptions{})
		if err != nil {
			return err
		}
		if d := out.Results[0].Delivered; d != n {
			return fmt.Errorf("delivered to %d subscribers, want %d", d, n)
		}
		return f.await()
	}
	// Every stream is live (its replay out) once each reader has one
	// event: the timed publishes find them all idle.
	if err := publish(); err != nil {
		b.Fatal(err)
	}
	f.measure(b, n, publish)
	// The clients leave: every stream ends and releases its subscription.
	f.closeClients()
	select {
	case <-allEnded:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d streams ended in a minute", ended.Load(), n)
	}
	if s := st.Subscribers(); s != 0 {
		b.Fatalf("%d streams still counted after every release", s)
	}
}

// BenchmarkFanoutReaderFloor is the same readers fed by a bare server: the
// publishing goroutine writes each event's chunk to every socket itself,
// with no hub or streamer. Its allocs/delivery are what the readers and the
// sockets cost (none expected); its ns/delivery is a floor for this
// machine's loopback (the hub also spreads writes over the cores).
func BenchmarkFanoutReaderFloor(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			needDescriptors(b, n)
			benchReaderFloor(b, n)
		})
	}
}

func benchReaderFloor(b *testing.B, n int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"d\r\n: caddy-sse\n\n\r\n")
	serverConns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range serverConns {
			c.Close()
		}
	}()
	// Readers dial one at a time; each connection is answered as soon as
	// it is accepted, so every reader gets its opening.
	f := newFanoutReaders(n)
	defer f.stop(b)
	for i := range n {
		f.dial(b, ln.Addr().String(), i)
		c := <-accepted
		serverConns = append(serverConns, c)
		if _, err := c.Write(head); err != nil {
			b.Fatal(err)
		}
	}
	waitOrFail(b, &f.ready, "every reader's opening")

	ev := hub.EncodeEvent(hub.ID{Epoch: "abcdefghij", Seq: 1}, &hub.Message{Data: fanoutData})
	chunk := append(fmt.Appendf(nil, "%x\r\n", len(ev)), ev...)
	chunk = append(chunk, "\r\n"...)
	publish := func() error {
		f.left.Store(int64(n))
		for _, c := range serverConns {
			if _, err := c.Write(chunk); err != nil {
				return err
			}
		}
		return f.await()
	}
	if err := publish(); err != nil {
		b.Fatal(err)
	}
	f.measure(b, n, publish)
	f.closeClients()
}

// fanoutReaders are the N clients: one goroutine and one connection each,
// and the count of events still to be read in this round.
type fanoutReaders struct {
	conns   []net.Conn
	ready   sync.WaitGroup // each reader has read the stream's opening
	running sync.WaitGroup // reader goroutines
	left    atomic.Int64   // events of this round not yet read
	done    chan struct{}  // left reached 0
	failed  chan error     // a reader's stream ended or was refused
	closing atomic.Bool    // the clients are being closed: read errors are expected
	stuck   chan struct{}  // closed by the watchdog when no round completes for a long time
	quit    chan struct{}  // stops the watchdog
	rounds  atomic.Int64
}

func newFanoutReaders(n int) *fanoutReaders {
	return &fanoutReaders{
		conns:  make([]net.Conn, n),
		done:   make(chan struct{}, 1),
		failed: make(chan error, n),
		stuck:  make(chan struct{}),
		quit:   make(chan struct{}),
	}
}

var streamRequest = []byte("GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")

func (f *fanoutReaders) dial(b *testing.B, addr string, i int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatalf("dial %d: %v", i, err)
	}
	f.conns[i] = c
	if _, err := c.Write(streamRequest); err != nil {
		b.Fatalf("request %d: %v", i, err)
	}
	f.ready.Add(1)
	f.running.Add(1)
	go f.read(c)
}

var (
	streamOpening = []byte(": caddy-sse\n\n")
	markerBytes   = []byte{fanoutMarker}
)

// read is one client: it reads the response head and the stream's opening,
// then counts events, allocating nothing per read.
func (f *fanoutReaders) read(c net.Conn) {
	defer f.running.Done()
	buf := make([]byte, 4096)
	var head []byte
	for !bytes.Contains(head, streamOpening) {
		n, err := c.Read(buf)
		head = append(head, buf[:n]...)
		if err != nil {
			f.fail(fmt.Errorf("before the stream's opening: %v (read %q)", err, head))
			f.ready.Done()
			return
		}
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
		f.fail(fmt.Errorf("response %q", head))
		f.ready.Done()
		return
	}
	f.ready.Done()
	for {
		n, err := c.Read(buf)
		if k := bytes.Count(buf[:n], markerBytes); k > 0 && f.left.Add(-int64(k)) == 0 {
			f.done <- struct{}{}
		}
		if err != nil {
			f.fail(err)
			return
		}
	}
}

func (f *fanoutReaders) fail(err error) {
	if !f.closing.Load() {
		f.failed <- err // buffered for every reader
	}
}

// await returns once every reader has read this round's event.
func (f *fanoutReaders) await() error {
	select {
	case <-f.done:
		f.rounds.Add(1)
		return nil
	case err := <-f.failed:
		return err
	case <-f.stuck:
		return errors.New("no round completed in 30s")
	}
}

// measure times publish over b.Loop and reports it per delivery. A
// watchdog (not a timeout per round, whose timer would be counted) fails
// a round that never completes.
func (f *fanoutReaders) measure(b *testing.B, n int, publish func() error) {
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		last := f.rounds.Load()
		for {
			select {
			case <-f.quit:
				return
			case <-t.C:
				r := f.rounds.Load()
				if r == last {
					close(f.stuck)
					return
				}
				last = r
			}
		}
	}()
	defer close(f.quit)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	rounds := 0
	for b.Loop() {
		if err := publish(); err != nil {
			b.Fatal(err)
		}
		rounds++
	}
	runtime.ReadMemStats(&after)
	deliveries := float64(rounds * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/deliveries, "B/delivery")
}

func (f *fanoutReaders) closeClients() {
	f.closing.Store(true)
	for _, c := range f.conns {
		if c != nil {
			c.Close()
		}
	}
}

// stop closes the clients (if the benchmark did not) and waits for every
// reader to end.
func (f *fanoutReaders) stop(b *testing.B) {
	f.closeClients()
	waitOrFail(b, &f.running, "every reader's end")
}

// waitOrFail waits for wg, failing after a minute: a safety net, not a
// synchronisation.
func waitOrFail(b *testing.B, wg *sync.WaitGroup, what string) {
	ok := make(chan struct{})
	go func() {
		wg.Wait()
		close(ok)
	}()
	select {
	case <-ok:
	case <-time.After(time.Minute):
		b.Fatalf("waited a minute for %s", what)
	}
}

// needDescriptors skips a size this process cannot open: both ends of
// every connection are in it.
func needDescriptors(b *testing.B, n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if need := uint64(2*n + 100); lim.Cur < need {
		b.Skipf("%d subscribers need %d descriptors (both ends in one process); the limit is %d", n, need, lim.Cur)
	}
}
