package stream

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"

	"golang.org/x/sys/unix"
)

// rawStream serves an event stream on a hijacked HTTP/1.1 connection whose
// response headers net/http has already sent with chunked framing. Each
// flush is one chunk, written with one writev of the shared event bytes:
// nothing is copied, and no wrapper, bufio layer or deadline bookkeeping
// sits between the hub and the socket.
//
// Two parties write: the stream's own goroutine (pump), and a publishing
// goroutine through writeNow, which writes an idle stream's new events
// without blocking instead of waking the goroutine. The gate orders them.
type rawStream struct {
	gate     writeGate
	conn     net.Conn
	rawConn  syscall.RawConn   // for writeNow's non-blocking writev
	sub      *hub.Subscription // told when the socket stops taking bytes
	timeout  time.Duration
	coalesce time.Duration // the route's coalesce window (WriteNow)
	chunk    [][]byte      // [chunk size line, event bytes..., CRLF]
	pending  int
	armed    int64    // the write deadline currently set, in Unix nanoseconds
	sizeBuf  [16]byte // a chunk's size line: 8 hex digits already make 4 GiB
	rest     [][]byte // what a non-blocking write left unwritten; it goes first
	err      error
	gone     lazyClose   // closed when the client closes its side, or sends anything
	ls       *loopStream // its event loop's view (loop_stream.go); nil: a goroutine watches (watch)

	misbehaved atomic.Bool  // the client sent bytes up its stream
	unframed   bool         // HTTP/1.0: no chunked framing; the stream ends at close
	lastNano   atomic.Int64 // gate.last in Unix nanoseconds, for readers without the gate (loopStream.wake)
}

// A rawStream is its subscription's notifier: the hub tells it of queued
// events and of its drop without a closure of its own per stream.
var _ hub.Notifier = (*rawStream)(nil)

// WriteNow writes the events queued for the stream if it can without
// blocking; what it cannot, the loop writes once it can (a driven stream
// has no goroutine to wake).
func (s *rawStream) WriteNow() bool { return s.writeNow(s.sub, s.coalesce) || s.ls.wake() }

// Dropped has a driven stream serviced, which ends it.
func (s *rawStream) Dropped() { s.ls.wake() }

// noteWrite records that bytes were written now; the gate is held.
func (s *rawStream) noteWrite(now time.Time) {
	s.gate.last = now
	s.lastNano.Store(now.UnixNano())
}

var (
	crlf       = []byte("\r\n")
	chunkedEnd = []byte("0\r\n\r\n") // the last chunk: a clean end of the body
)

// lazyClose is a channel closed once, made only if someone waits on it:
// a stream the event loop serves asks whether it is closed instead, and
// saves the channel (96 bytes of an idle stream).
type lazyClose struct {
	mu     sync.Mutex
	closed atomic.Bool
	ch     chan struct{}
}

func (c *lazyClose) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Swap(true) && c.ch != nil {
		close(c.ch)
	}
}

func (c *lazyClose) isClosed() bool { return c.closed.Load() }

// wait returns the channel, made (closed already, if it is) on first use.
func (c *lazyClose) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
		if c.closed.Load() {
			close(c.ch)
		}
	}
	return c.ch
}

// errStreamEnded stops writeNow once the stream's goroutine is done.
var errStreamEnded = errors.New("stream ended")

// hijackStream takes over the connection behind w after its headers were
// written, or returns nil where that is not possible (the stream then
// stays on the ResponseWriter). unframed is for HTTP/1.0, whose response
// net/http sent without chunked framing.
func hijackStream(w http.ResponseWriter, timeout time.Duration, sub *hub.Subscription, unframed bool) *rawStream {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	// Deadlines set for the request (Caddy's read and write timeouts)
	// would cut the stream; ours are set per flush.
	_ = conn.SetDeadline(time.Time{})
	s := &rawStream{conn: conn, sub: sub, unframed: unframed, timeout: timeout}
	if sc, ok := conn.(syscall.Conn); ok {
		s.rawConn, _ = sc.SyscallConn()
	}
	if brw.Reader.Buffered() > 0 {
		// Bytes after the request (EventSource sends none): see watch.
		s.misbehaved.Store(true)
		s.gone.close()
		return s
	}
	if s.ls = newLoopStream(s); s.ls == nil {
		go s.watch()
	}
	return s
}

// watch notices the client leaving, or sending anything at all up the
// stream: EventSource never does after its request, so a client that does
// is not one, and its stream is closed at once rather than read (a byte at
// a time, as net/http's background reader would, it cost a second of CPU
// per megabyte pushed).
func (s *rawStream) watch() {
	var b [1]byte
	if n, _ := s.conn.Read(b[:]); n > 0 {
		s.misbehaved.Store(true)
	}
	s.gone.close()
}

func (s *rawStream) gateOf() *writeGate { return &s.gate }

func (s *rawStream) add(b []byte) {
	if len(s.chunk) == 0 {
		s.chunk = append(s.chunk, nil) // room for the size line
	}
	s.chunk = append(s.chunk, b)
	s.pending += len(b)
}

// frame completes the chunk around what was added; an unframed stream
// sends the bytes alone.
func (s *rawStream) frame() {
	if s.unframed {
		s.chunk[0] = nil // the size line's room stays empty
		return
	}
	size := strconv.AppendInt(s.sizeBuf[:0], int64(s.pending), 16)
	s.chunk[0] = append(size, crlf...)
	s.chunk = append(s.chunk, crlf)
}

// flush writes what a non-blocking write left, then what was added, as one
// chunk, blocking up to the write timeout.
//
// While it writes, the subscriber counts as blocked (Subscription.Blocked):
// a write that lasts means the socket is not taking bytes.
func (s *rawStream) flush() error {
	if s.err == nil && len(s.rest) > 0 {
		s.blocked()
		s.armDeadline()
		bufs := net.Buffers(s.rest)
		_, s.err = bufs.WriteTo(s.conn)
		clear(s.rest)
		s.rest = s.rest[:0]
	}
	if s.err != nil || s.pending == 0 {
		s.reset()
		s.unblocked()
		return s.err
	}
	s.frame()
	s.blocked()
	s.armDeadline()
	bufs := net.Buffers(s.chunk)
	_, s.err = bufs.WriteTo(s.conn)
	s.reset()
	s.unblocked()
	return s.err
}

func (s *rawStream) blocked() {
	if s.sub != nil {
		s.sub.Blocked()
	}
}

func (s *rawStream) unblocked() {
	if s.sub != nil && s.err == nil {
		s.sub.Unblocked()
	}
}

// maxIovecs is what one writev takes (Linux's IOV_MAX); writeNow leaves
// larger batches to the goroutine, whose writes split them.
const maxIovecs = 1024

// writeNow writes sub's queued events if the stream is idle and live: not
// gathering for coalescing, not written within the coalesce window, nothing
// left over. It never blocks: a socket that takes only part of the chunk
// leaves the rest to the stream's goroutine. It reports true when nothing
// is left to do.
func (s *rawStream) writeNow(sub *hub.Subscription, coalesce time.Duration) bool {
	g := &s.gate
	if !g.mu.TryLock() {
		return false // the goroutine is writing; it is woken to look again
	}
	defer g.mu.Unlock()
	if g.gathering && s.ls.isDriven() {
		return true // the stream's timer writes them when the window ends
	}
	if !g.live || g.gathering || s.err != nil || len(s.rest) > 0 || (s.rawConn == nil && !s.ls.isOwned()) {
		return false
	}
	now := time.Now()
	if coalesce > 0 && now.Sub(g.last) < coalesce {
		if s.ls.gather(g.last.Add(coalesce)) {
			g.gathering = true
			return true
		}
		return false // the goroutine gathers this window's events
	}
	sc := getScratch()
	batch, fits := sub.TakeUpTo(sc.evs[:0], maxIovecs-2)
	if !fits || len(batch) == 0 {
		sc.put(0)
		return fits
	}
	s.writeChunk(sc, batch, nil, now)
	sc.put(len(batch))
	if s.err != nil {
		return false
	}
	if len(s.rest) > 0 {
		s.blocked() // the socket is full; the goroutine's flush or the loop clears it
	}
	return len(s.rest) == 0
}

// tryWrite writes bufs without blocking, reporting how much the socket
// took (0 when it is full) and errors other than a full socket.
func (s *rawStream) tryWrite(bufs [][]byte) (int, error) {
	sc := getScratch()
	defer sc.put(0)
	return s.tryWriteWith(sc, bufs)
}

// tryWriteWith is tryWrite with sc's kernel vector.
func (s *rawStream) tryWriteWith(sc *writeScratch, bufs [][]byte) (int, error) {
	var n int
	var werr, err error
	if s.ls.isOwned() {
		// The gate, held, keeps the owned descriptor open (loopStream.close).
		n, werr = writev(s.ls.fd, bufs, sc.vec[:])
	} else {
		n, werr, err = s.tryWriteConn(bufs)
	}
	if err == nil && werr != nil && !errors.Is(werr, unix.EAGAIN) && !errors.Is(werr, unix.EINTR) {
		err = werr
	}
	return max(n, 0), err
}

// tryWriteConn is tryWrite through the connection (no event loop, or no
// descriptor of its own). The vector is copied first: the
// function given to Control escapes, and what it captured would too, which
// would put every caller's vector on the heap (a driven stream's writes,
// through its own descriptor, allocate nothing).
func (s *rawStream) tryWriteConn(bufs [][]byte) (n int, werr, err error) {
	iov := slices.Clone(bufs)
	err = s.rawConn.Control(func(fd uintptr) {
		n, werr = unix.Writev(int(fd), iov)
	})
	return n, werr, err
}

// writeRest writes, without blocking, what an earlier non-blocking write
// left; it reports whether the socket took any of it. The gate is held.
func (s *rawStream) writeRest() bool {
	if s.err != nil || len(s.rest) == 0 {
		return false
	}
	n, err := s.tryWrite(s.rest)
	if err != nil {
		s.err = err
		return false
	}
	rest := appendUnwritten(s.rest[:0], s.rest, n) // in place: it only moves entries down
	clear(s.rest[len(rest):])
	s.rest = rest
	return n > 0
}

// writeChunk frames evs, then extra, as one chunk in sc's vector and writes
// it without blocking; what the socket does not take is kept in rest. It
// reports whether the socket took any bytes. The gate is held, and rest is
// empty.
func (s *rawStream) writeChunk(sc *writeScratch, evs []*hub.Event, extra []byte, now time.Time) bool {
	pending := len(extra)
	iov := append(sc.iov[:0], nil) // room for the size line
	for _, ev := range evs {
		iov = append(iov, ev.Wire)
		pending += len(ev.Wire)
	}
	if extra != nil {
		iov = append(iov, extra)
	}
	if pending == 0 {
		return false
	}
	if !s.unframed {
		iov[0] = append(strconv.AppendInt(s.sizeBuf[:0], int64(pending), 16), crlf...)
		iov = append(iov, crlf)
	}
	n, err := s.tryWriteWith(sc, iov)
	if err == nil {
		s.noteWrite(now)
		s.rest = appendUnwritten(s.rest[:0], iov, n)
	} else {
		s.err = err
	}
	clear(iov) // sc goes back to its pool: it must not pin the events
	return err == nil && n > 0
}

// appendUnwritten appends what is left of bufs after n bytes were written.
func appendUnwritten(dst, bufs [][]byte, n int) [][]byte {
	for _, b := range bufs {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		dst = append(dst, b[n:])
		n = 0
	}
	return dst
}

// armDeadline gives the coming write between half and all of the write
// timeout. Setting a deadline costs a runtime timer update, which showed in
// the profile of a 10,000-subscriber fan-out when done on every flush
// (bench/NOTES.md); a busy stream re-arms at most twice per timeout. The deadline is left set
// between flushes: it is only checked by a blocking write, and every one
// comes through here first.
func (s *rawStream) armDeadline() {
	if s.timeout <= 0 {
		return
	}
	now := time.Now()
	if time.Duration(s.armed-now.UnixNano()) >= s.timeout/2 {
		return
	}
	armed := now.Add(s.timeout)
	s.armed = armed.UnixNano()
	_ = s.conn.SetWriteDeadline(armed)
}

func (s *rawStream) reset() {
	clear(s.chunk)
	s.chunk = s.chunk[:0]
	s.pending = 0
}

func (s *rawStream) buffered() int               { return s.pending }
func (s *rawStream) writeTimeout() time.Duration { return s.timeout }

func (s *rawStream) setDeadline(t time.Time) {
	s.armed = 0 // a fresh deadline is set before the next blocking write
	if !t.IsZero() {
		s.armed = t.UnixNano()
	}
	_ = s.conn.SetWriteDeadline(t)
}

// finish ends the chunked body when the connection is still healthy, so
// the client sees a clean end of stream, then closes the connection.
func (s *rawStream) finish() {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	if s.err == nil && len(s.rest) == 0 && !s.unframed {
		if !s.gone.isClosed() {
			_, _ = s.conn.Write(chunkedEnd)
		}
	}
	s.err = errStreamEnded
	s.ls.detach()
	_ = s.conn.Close()
}
