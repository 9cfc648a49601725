package stream

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/ssehub/caddy-sse/internal/hub"
)

// stream writes to one subscriber, bounding every write by the route's
// write_timeout so a dead peer is dropped.
//
// Caddy (2.11.9+) already wraps responses in an IdleTimeoutWriter that
// re-arms a write deadline before every write and flush, and clears it
// between writes on HTTP/2 (where an armed deadline resets an idle stream).
// The stream hands it our timeout through Override, so each write costs no
// deadline work of ours. Only where that writer is absent (the server's
// write_idle_timeout disabled) does the stream arm and clear deadlines
// itself around each flush.
type responseSink struct {
	gate    writeGate
	sub     *hub.Subscription // told while a flush is blocked
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	managed bool   // Caddy's IdleTimeoutWriter enforces timeout
	restore func() // undoes the Override
	pending int
	err     error
}

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
			s.sub.Blocked() // until flush: a Write may wait for the peer too
		}
		if !s.managed && s.timeout > 0 {
			s.setDeadline(time.Now().Add(s.timeout))
		}
	}
	s.pending += len(b)
	_, s.err = s.w.Write(b)
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
	s.pending = 0
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
