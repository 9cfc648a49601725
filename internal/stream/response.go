package stream

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/ssehub/caddy-sse/internal/hub"
)

// responseSink writes a stream to one subscriber through the
// ResponseWriter (HTTP/2, HTTP/3), bounding every write by the route's
// write_timeout so a dead peer is dropped.
//
// Slowness is judged by progress, as on the HTTP/1.1 event loop
// (loopStream.step): what is added is written in pieces of up to
// writePiece, each flushed before the next is written, and every piece
// the peer takes counts as progress. The hub then sees the subscriber
// blocked since the last piece it took (Subscription.Blocked), not since
// the flush began, and the write timeout runs from that piece too: a
// reader that keeps taking bytes is not dropped because a large flush to
// it outlasts the hub's judgement or write_timeout.
//
// Caddy (2.11.9+) already wraps responses in an IdleTimeoutWriter that
// re-arms a write deadline before every write and flush, and clears it
// between writes on HTTP/2 (where an armed deadline resets an idle stream).
// The stream hands it our timeout through Override, so each write costs no
// deadline work of ours, and the timeout runs from each piece's Write and
// Flush. Only where that writer is absent (the server's
// write_idle timeout disabled) does the stream arm its deadline itself:
// at a flush's first write, again after each piece, and clear it when the
// flush is done.
type responseSink struct {
	gate    writeGate
	sub     *hub.Subscription // told while the peer has not taken the last piece
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	managed bool   // Caddy's IdleTimeoutWriter enforces timeout
	restore func() // undoes the Override
	pending int    // bytes added since the last flush
	inPiece int    // of them, written since the last Flush
	err     error
}

// writePiece bounds what responseSink writes between two Flushes, each a
// sign of progress. 16 KiB is HTTP/2's default frame size and TLS's
// largest record. While its queue is full, a reader must take a piece per
// 100 ms (the hub's judgement), 160 KiB/s, to count as reading: a slower
// one reads slower than its events arrive, which the hub drops anyway. A
// flush of up to 16 KiB, which almost every flush is (an event or a few),
// writes and flushes once, as before; a 64 KiB batch flushes four times
// instead of once, next to the sixteen 4 KiB chunks Go's HTTP/2 server
// hands its connection for it anyway.
const writePiece = 16 << 10

func newResponseSink(w http.ResponseWriter, timeout time.Duration) *responseSink {
	s := &responseSink{w: w, rc: http.NewResponseController(w), timeout: timeout}
	if iw := idleTimeoutWriter(w); iw != nil && timeout > 0 {
		s.restore = iw.Override(timeout, 0, 0)
		s.managed = true
	}
	return s
}

// idleTimeoutWriter finds Caddy's IdleTimeoutWriter under w, if any.
func idleTimeoutWriter(w http.ResponseWriter) *caddyhttp.IdleTimeoutWriter {
	for range 16 { // wrappers are few; bound the walk anyway
		if iw, ok := w.(*caddyhttp.IdleTimeoutWriter); ok {
			return iw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

func (s *responseSink) gateOf() *writeGate { return &s.gate }

func (s *responseSink) buffered() int { return s.pending }

func (s *responseSink) writeTimeout() time.Duration { return s.timeout }

// release gives Caddy's writer back its own settings.
func (s *responseSink) release() {
	if s.restore != nil {
		s.restore()
	}
}

func (s *responseSink) add(b []byte) {
	if s.err != nil {
		return
	}
	if s.pending == 0 {
		if s.sub != nil {
			s.sub.Blocked() // until the peer takes a piece: a Write may wait for it too
		}
		if !s.managed && s.timeout > 0 {
			s.setDeadline(time.Now().Add(s.timeout))
		}
	}
	s.pending += len(b)
	for len(b) > 0 {
		if s.inPiece == writePiece {
			// A piece is written: it must reach the peer before more
			// is written, so that taking it counts.
			if s.err = s.rc.Flush(); s.err != nil {
				return
			}
			s.inPiece = 0
			s.progressed()
		}
		n := min(len(b), writePiece-s.inPiece)
		if _, s.err = s.w.Write(b[:n]); s.err != nil {
			return
		}
		s.inPiece += n
		b = b[n:]
	}
}

// progressed records that the peer took a piece while more is to be
// written: blocked from now on, not from when the flush began, and (where
// Caddy's writer is absent) the deadline re-armed from now.
func (s *responseSink) progressed() {
	if s.sub != nil {
		s.sub.Unblocked()
		s.sub.Blocked()
	}
	if !s.managed && s.timeout > 0 {
		s.setDeadline(time.Now().Add(s.timeout))
	}
}

func (s *responseSink) flush() error {
	if s.err == nil && s.pending > 0 {
		s.err = s.rc.Flush()
		if s.sub != nil && s.err == nil {
			s.sub.Unblocked()
		}
	}
	if s.pending > 0 && !s.managed && s.timeout > 0 {
		s.setDeadline(time.Time{})
	}
	s.pending, s.inPiece = 0, 0
	return s.err
}

// setDeadline sets the write deadline; under Caddy's IdleTimeoutWriter it
// becomes a ceiling the idle deadline cannot pass, which is what the drop
// and shutdown paths need.
func (s *responseSink) setDeadline(t time.Time) {
	// HTTP/3 and some wrapped writers cannot set deadlines; the stream
	// then relies on the queue bound alone.
	_ = s.rc.SetWriteDeadline(t)
}
