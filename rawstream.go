package caddysse

import (
	"net"
	"net/http"
	"strconv"
	"time"
)

// rawStream serves an event stream on a hijacked HTTP/1.1 connection whose
// response headers net/http has already sent with chunked framing. Each
// flush is one chunk, written with one writev of the shared event bytes:
// nothing is copied, and no wrapper, bufio layer or deadline bookkeeping
// sits between the hub and the socket.
type rawStream struct {
	conn    net.Conn
	timeout time.Duration
	chunk   [][]byte // [chunk size line, event bytes..., CRLF]
	pending int
	armed   time.Time // the write deadline currently set
	sizeBuf [18]byte
	err     error
	gone    chan struct{} // closed when the client closes its side
}

var crlf = []byte("\r\n")

// hijackStream takes over the connection behind w after its headers were
// written, or returns nil where that is not possible (the stream then
// stays on the ResponseWriter).
func hijackStream(w http.ResponseWriter, timeout time.Duration) *rawStream {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	// Deadlines set for the request (Caddy's read and write timeouts)
	// would cut the stream; ours are set per flush.
	_ = conn.SetDeadline(time.Time{})
	s := &rawStream{conn: conn, timeout: timeout, gone: make(chan struct{})}
	go s.watch()
	return s
}

// watch notices the client leaving: a read returns only when the peer
// closes (or breaks) the connection. What a client might send is ignored.
// It is what net/http's background reader did, with a 1-byte buffer.
func (s *rawStream) watch() {
	var b [1]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			close(s.gone)
			return
		}
	}
}

func (s *rawStream) add(b []byte) {
	if len(s.chunk) == 0 {
		s.chunk = append(s.chunk, nil) // room for the size line
	}
	s.chunk = append(s.chunk, b)
	s.pending += len(b)
}

func (s *rawStream) flush() error {
	if s.err != nil || s.pending == 0 {
		s.reset()
		return s.err
	}
	size := strconv.AppendInt(s.sizeBuf[:0], int64(s.pending), 16)
	s.chunk[0] = append(size, crlf...)
	s.chunk = append(s.chunk, crlf)
	s.armDeadline()
	bufs := net.Buffers(s.chunk)
	_, s.err = bufs.WriteTo(s.conn)
	s.reset()
	return s.err
}

// armDeadline gives the coming write between half and all of the write
// timeout. Setting a deadline costs a runtime timer update, which was 8% of
// the CPU of a 10,000-subscriber fan-out when done on every flush; a busy
// stream now re-arms at most twice per timeout. The deadline is left set
// between flushes: it is only checked by a write, and every write comes
// through here first.
func (s *rawStream) armDeadline() {
	if s.timeout <= 0 {
		return
	}
	now := time.Now()
	if s.armed.Sub(now) >= s.timeout/2 {
		return
	}
	s.armed = now.Add(s.timeout)
	_ = s.conn.SetWriteDeadline(s.armed)
}

func (s *rawStream) reset() {
	clear(s.chunk)
	s.chunk = s.chunk[:0]
	s.pending = 0
}

func (s *rawStream) buffered() int               { return s.pending }
func (s *rawStream) writeTimeout() time.Duration { return s.timeout }
func (s *rawStream) setDeadline(t time.Time) {
	s.armed = t
	_ = s.conn.SetWriteDeadline(t)
}

// finish ends the chunked body when the connection is still healthy, so
// the client sees a clean end of stream, then closes the connection.
func (s *rawStream) finish() {
	if s.err == nil {
		select {
		case <-s.gone:
		default:
			_, _ = s.conn.Write([]byte("0\r\n\r\n"))
		}
	}
	_ = s.conn.Close()
}
