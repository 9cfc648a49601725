package stream

import (
	"bytes"
	"io"
	"net"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"
)

// tcpPair is a connected loopback TCP pair with small socket buffers, so a
// test can fill the sending side.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	server, client = s.(*net.TCPConn), c.(*net.TCPConn)
	_ = server.SetWriteBuffer(4 << 10)
	_ = client.SetReadBuffer(4 << 10)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func newTestRawStream(t *testing.T, conn *net.TCPConn) *rawStream {
	t.Helper()
	s := &rawStream{conn: conn, timeout: 10 * time.Second}
	var err error
	if s.rawConn, err = conn.SyscallConn(); err != nil {
		t.Fatal(err)
	}
	return s
}

// A publisher's non-blocking write into a full socket leaves the rest to
// the stream's goroutine, whose flush sends it first: the client reads
// every event once, in order, in valid chunked framing.
func TestWriteNowLeavesTheRestToFlush(t *testing.T) {
	server, client := tcpPair(t)
	s := newTestRawStream(t, server)
	s.gate.live = true
	h := hub.NewHub()
	ref := hub.TopicRef{Name: "t", Ring: hub.RingConfig{Replay: 0, ReplaySize: hub.DefaultReplaySize}}
	sub, _, err := h.Subscribe([]hub.TopicRef{ref}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	big := strings.Repeat("x", 16<<10)
	partial := false
	for i := 0; i < 200 && !partial; i++ {
		res, err := hubtest.Publish(h, []hub.Publication{{Message: &hub.Message{Topics: []string{"t"}, Data: big}, Topics: []hub.TopicRef{ref}}})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := hub.ParseID(res[0].ID)
		want.Write(hub.EncodeEvent(id, &hub.Message{Data: big}))
		if !s.writeNow(sub, 0) {
			if s.err != nil {
				t.Fatalf("writeNow: %v", s.err)
			}
			partial = len(s.rest) > 0
		}
	}
	if !partial {
		t.Fatal("the socket never filled: no partial write to test")
	}
	// Nothing else may be written while a rest is pending.
	if s.writeNow(sub, 0) {
		t.Fatal("writeNow wrote past an unwritten rest")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(httputil.NewChunkedReader(client))
		got <- b
	}()
	if err := s.flush(); err != nil {
		t.Fatalf("flush of the rest: %v", err)
	}
	s.finish()
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("client read %d bytes, want %d (first difference at %d)", len(b), want.Len(), firstDiff(b, want.Bytes()))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("client did not read the stream's end")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// writeNow leaves events to the stream's goroutine while the replay is
// not out, while it gathers, within the coalesce window, and after the
// stream ended.
func TestWriteNowDefersToTheGoroutine(t *testing.T) {
	server, _ := tcpPair(t)
	s := newTestRawStream(t, server)
	h := hub.NewHub()
	ref := hub.TopicRef{Name: "t", Ring: hub.DefaultRingConfig()}
	sub, _, _ := h.Subscribe([]hub.TopicRef{ref}, "", 10)
	publish := func() {
		if _, err := hubtest.Publish(h, []hub.Publication{{Message: &hub.Message{Topics: []string{"t"}, Data: "x"}, Topics: []hub.TopicRef{ref}}}); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	if s.writeNow(sub, 0) || sub.Queued() != 1 {
		t.Fatal("wrote before the stream was live")
	}
	s.gate.live, s.gate.gathering = true, true
	if s.writeNow(sub, 0) || sub.Queued() != 1 {
		t.Fatal("wrote while the goroutine gathers")
	}
	s.gate.gathering, s.gate.last = false, time.Now()
	if s.writeNow(sub, time.Hour) || sub.Queued() != 1 {
		t.Fatal("wrote within the coalesce window")
	}
	if !s.writeNow(sub, 0) || sub.Queued() != 0 {
		t.Fatal("an idle live stream did not write")
	}
	publish()
	s.finish()
	if s.writeNow(sub, 0) {
		t.Fatal("wrote after the stream ended")
	}
}

func TestAppendUnwritten(t *testing.T) {
	bufs := [][]byte{[]byte("ab"), []byte("cde"), []byte("f")}
	for n, want := range []string{"abcdef", "bcdef", "cdef", "def", "ef", "f", ""} {
		var got []byte
		for _, b := range appendUnwritten(nil, bufs, n) {
			got = append(got, b...)
		}
		if string(got) != want {
			t.Errorf("after %d bytes: %q, want %q", n, got, want)
		}
	}
}

// A stream written only by writeNow for longer than its write timeout keeps
// working: the deadline a blocking flush once set is not hit, by writeNow
// nor by the next blocking flush, which re-arms it first.
func TestWriteNowOutlivesTheLastFlushDeadline(t *testing.T) {
	server, client := tcpPair(t)
	s := newTestRawStream(t, server)
	s.gate.live = true
	// What a flush long ago left behind: a deadline now in the past.
	s.setDeadline(time.Now().Add(-time.Second))
	h := hub.NewHub()
	ref := hub.TopicRef{Name: "t", Ring: hub.DefaultRingConfig()}
	sub, _, _ := h.Subscribe([]hub.TopicRef{ref}, "", 10)
	if _, err := hubtest.Publish(h, []hub.Publication{{Message: &hub.Message{Topics: []string{"t"}, Data: "late"}, Topics: []hub.TopicRef{ref}}}); err != nil {
		t.Fatal(err)
	}
	if !s.writeNow(sub, 0) {
		t.Fatalf("writeNow failed: %v", s.err)
	}
	b := make([]byte, 64)
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := client.Read(b)
	if err != nil || !strings.Contains(string(b[:n]), "data: late") {
		t.Fatalf("client read %q, %v", b[:n], err)
	}
	s.add([]byte("data: flushed\n\n"))
	if err := s.flush(); err != nil {
		t.Fatalf("the blocking flush after it: %v", err)
	}
	n, err = client.Read(b)
	if err != nil || !strings.Contains(string(b[:n]), "data: flushed") {
		t.Fatalf("client read %q, %v", b[:n], err)
	}
}
