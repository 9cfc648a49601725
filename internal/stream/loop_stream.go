//go:build linux

package stream

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// loopStream is a hijacked stream as the event loop knows it
// (loop_linux.go). From the hijack on, the loop watches its socket for the
// client leaving (closing gone, which the stream's goroutine waits on
// while it sends the replay). Once driven, the goroutine has ended and
// service does what pump did: write what a publisher could not,
// heartbeats, the coalesce window, the write timeout, drops and goodbyes.
// service runs on whoever needs it (the loop, its timer wheel, a
// watcher of the configuration stopping), one at a time: it holds the
// write gate throughout, and never blocks.
type loopStream struct {
	raw  *rawStream
	sub  *hub.Subscription
	loop *eventLoop
	// fd is the socket as the loop knows it: the connection's own until
	// the stream is driven, then a duplicate the stream owns (own). It is
	// written holding both the gate and fdmu, and read holding either.
	fd   int
	fdmu sync.Mutex

	// Set by drive, before driven; read once driven is seen.
	h      atomic.Pointer[Streamer]
	remote string
	refs   []hub.TopicRef
	endAt  time.Time // the route ends the stream then (a token's expiry); zero: never
	ended  func()    // unsubscribes and releases (Stream's done); run off the loop

	driven atomic.Bool // served here: the stream's goroutine has ended
	owned  bool        // fd is ours: the net.Conn was closed (own); guarded as fd is

	// Its place in its timer wheel (wheel.go), due at the earliest time
	// it needs service: its heartbeat, the end of its coalesce window,
	// its write timeout.
	wheel *wheel
	w     wheelLinks

	// Guarded by raw.gate.mu:
	over      bool  // ended: nothing more is done
	outArmed  bool  // EPOLLOUT is watched
	blockedAt int64 // since when (Unix nanoseconds) bytes wait for room without the socket taking any; 0: they do not
}

// newLoopStream registers raw's socket with the event loop, which then
// closes raw.gone when the client leaves; nil when no loop can take it
// (raw.watch does that instead).
func newLoopStream(raw *rawStream) *loopStream {
	if raw.rawConn == nil {
		return nil
	}
	l := loopFor()
	if l == nil {
		return nil
	}
	fd := -1
	if err := raw.rawConn.Control(func(d uintptr) { fd = int(d) }); err != nil || fd < 0 {
		return nil
	}
	ls := &loopStream{raw: raw, sub: raw.sub, loop: l, fd: fd, wheel: wheelFor(fd)}
	if l.add(ls) != nil {
		return nil
	}
	return ls
}

// readable reads what made the socket readable: the client closing its
// side, or sending bytes, which an EventSource never does after its
// request (rawStream.watch). Either way the stream is over.
func (ls *loopStream) readable() {
	var b [1]byte
	n, rerr := 0, error(nil)
	// fdmu (an owned descriptor) or Control (the connection's) keeps the
	// descriptor from being closed, and reused, while it is read. The
	// write gate is not taken: a goroutine that has not handed the stream
	// over yet may hold it for a blocking write.
	ls.fdmu.Lock()
	switch {
	case ls.fd < 0:
		ls.fdmu.Unlock()
		return // closed meanwhile
	case ls.owned:
		n, rerr = unix.Read(ls.fd, b[:])
	default:
		if err := ls.raw.rawConn.Control(func(fd uintptr) { n, rerr = unix.Read(int(fd), b[:]) }); err != nil {
			rerr = err
		}
	}
	if n < 0 && (errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR)) {
		ls.fdmu.Unlock()
		return // nothing after all
	}
	ls.loop.remove(ls) // level-triggered: stop hearing about it
	ls.fdmu.Unlock()
	if n > 0 {
		ls.raw.misbehaved.Store(true)
	}
	ls.raw.gone.close()
	ls.service()
}

// own swaps the stream's connection for a duplicate of its socket, which
// the stream then owns: closing the net.Conn frees what the net package
// kept for it (its netFD, addresses, poller entry, write deadline timer
// and writev vector cache: about 450 bytes of an idle stream's 2.4 KiB).
// The socket stays open: close(2) of one descriptor leaves the other.
// Where no descriptor can be had (EMFILE), the stream keeps its
// connection. The gate is held; nothing writes through the connection
// after this (the stream's goroutine has ended).
func (ls *loopStream) own() {
	raw := ls.raw
	dup, derr := -1, error(nil)
	if err := raw.rawConn.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return
	}
	ls.fdmu.Lock()
	defer ls.fdmu.Unlock()
	if ls.fd < 0 || ls.loop.rekey(ls, dup) != nil {
		_ = unix.Close(dup)
		return
	}
	ls.fd, ls.owned = dup, true
	// The loop no longer watches the old descriptor (rekey), so closing
	// it cannot be mistaken for the client leaving.
	_ = raw.conn.Close()
	raw.conn, raw.rawConn = nil, nil
}

// drive hands the stream over once its replay is out: its goroutine
// returns after this, and service ends the stream (ended runs then).
func (ls *loopStream) drive(h *Streamer, remote string, refs []hub.TopicRef, endAt time.Time, ended func()) {
	ls.remote, ls.refs, ls.endAt, ls.ended = remote, refs, endAt, ended
	ls.h.Store(h)
	g := &ls.raw.gate
	g.mu.Lock()
	ls.own()
	// The replay's chunk vector is not needed any more: a driven stream
	// builds each chunk on its writer's stack (rawStream.writeChunk).
	ls.raw.chunk = nil
	g.live = true
	ls.raw.noteWrite(time.Now())
	g.mu.Unlock()
	// A configuration that stops has SayGoodbye service its streams
	// (App.closeStreams); one that stopped before this sees Stopping here.
	ls.driven.Store(true)
	ls.service() // what was queued meanwhile, and the first heartbeat's time
}

// wake has a driven stream serviced: a publisher could not write its
// events (another writer held the gate, the socket is full), or the hub
// dropped it. False before it is driven: its goroutine then waits for
// them itself.
func (ls *loopStream) wake() bool {
	if ls == nil || !ls.driven.Load() {
		return false
	}
	// Serviced now, or when the open coalesce window ends; arm keeps an
	// earlier time the stream is already due at.
	at := time.Now()
	if end := time.Unix(0, ls.raw.lastNano.Load()+int64(ls.h.Load().Coalesce)); end.After(at) {
		at = end
	}
	ls.arm(at)
	return true
}

// gather has a driven stream's wheel write what waits when the coalesce
// window ends, at end: a publisher found it written less than a window
// ago. False before it is driven (its goroutine gathers).
func (ls *loopStream) gather(end time.Time) bool {
	if ls == nil || !ls.driven.Load() {
		return false
	}
	ls.arm(end)
	return true
}

// arm has the stream serviced at at, unless it already is earlier.
func (ls *loopStream) arm(at time.Time) { ls.wheel.arm(ls, at) }

var (
	servicersOnce sync.Once
	servicerQueue chan *loopStream
)

// servicers is the queue of the goroutines that service streams whose
// time came in their wheel (wheel.go), one per core, started on first use
// and kept for the process (as the event loop is).
func servicers() chan<- *loopStream {
	servicersOnce.Do(func() {
		servicerQueue = make(chan *loopStream, 4096)
		for range runtime.GOMAXPROCS(0) {
			go func() {
				for ls := range servicerQueue {
					ls.service()
				}
			}()
		}
	})
	return servicerQueue
}

// isDriven reports whether the stream is served here (no goroutine).
func (ls *loopStream) isDriven() bool { return ls != nil && ls.driven.Load() }

// isOwned reports whether the stream writes to a descriptor of its own
// (own); the gate is held.
func (ls *loopStream) isOwned() bool { return ls != nil && ls.owned }

// detach forgets the socket before the stream's goroutine closes it.
func (ls *loopStream) detach() {
	if ls != nil {
		ls.loop.remove(ls)
	}
}

// service does whatever the stream needs now: end it, write what waits
// (once the coalesce window is over), a heartbeat; then it arms the wheel
// for the next thing due.
func (ls *loopStream) service() {
	if !ls.driven.Load() {
		return
	}
	g := &ls.raw.gate
	g.mu.Lock()
	if ls.over {
		g.mu.Unlock()
		return
	}
	next := ls.step(ls.h.Load(), time.Now())
	over := ls.over
	g.mu.Unlock()
	if over {
		ls.close()
		return
	}
	if !next.IsZero() {
		ls.arm(next)
	}
}

// step is service's work under the gate. It returns when the stream next
// needs service (zero: only when woken), or sets ls.over when the stream
// is to be closed.
func (ls *loopStream) step(h *Streamer, now time.Time) time.Time {
	raw, sub, g := ls.raw, ls.sub, &ls.raw.gate
	select {
	case <-h.Stopping:
		// Before Done: a stopping configuration also closes its hubs,
		// which drops every subscriber, and each still gets its goodbye
		// (Streamer.goodbye), if its socket takes it at once: one that is
		// full belongs to a client that reconnects by itself.
		sub.Drop(hub.DropShutdown)
		raw.writeRest()
		if raw.err == nil && len(raw.rest) == 0 {
			sc := getScratch()
			raw.writeChunk(sc, nil, goodbyeRetry(), now)
			sc.put(0)
			if raw.err == nil && len(raw.rest) == 0 && !raw.unframed {
				_, _ = raw.tryWrite([][]byte{chunkedEnd})
			}
		}
		ls.over = true
		return time.Time{}
	default:
	}
	if sub.Dropped() { // not Done: its channel would cost memory (hub/signals.go)
		// Dropped: its socket stopped taking bytes while its queue was
		// full, or the hub closed. The client resumes by id.
		if reason := sub.DropReason(); reason == hub.DropSlow || reason == hub.DropOverload {
			h.LogDrop(reason, ls.remote, ls.refs)
		}
		ls.over = true
		return time.Time{}
	}
	if raw.gone.isClosed() {
		if raw.misbehaved.Load() && sub.Drop(hub.DropProtocol) {
			h.LogDrop(hub.DropProtocol, ls.remote, ls.refs)
		}
		ls.over = true
		return time.Time{}
	}

	if !ls.endAt.IsZero() && !now.Before(ls.endAt) {
		// The route ends the stream (a token expired): a clean end,
		// which the client follows by reconnecting.
		raw.writeRest()
		if raw.err == nil && len(raw.rest) == 0 && !raw.unframed {
			_, _ = raw.tryWrite([][]byte{chunkedEnd})
		}
		ls.over = true
		return time.Time{}
	}
	var next time.Time
	if !ls.endAt.IsZero() {
		next = ls.endAt
	}
	progressed := raw.writeRest()
	if raw.err == nil && len(raw.rest) == 0 {
		gather := time.Duration(0)
		if h.Coalesce > 0 && !sub.PastHalf() {
			gather = h.Coalesce - now.Sub(g.last)
		}
		if gather > 0 && sub.Queued() > 0 {
			// Written less than a window ago: gather until it ends
			// (pump); publishers leave the stream alone meanwhile.
			g.gathering = true
			next = g.last.Add(h.Coalesce)
		} else {
			g.gathering = false
			progressed = ls.writeQueued(now) || progressed
		}
	}
	if raw.err == nil && len(raw.rest) == 0 && h.Heartbeat > 0 && now.Sub(g.last) >= h.Heartbeat {
		sc := getScratch()
		progressed = raw.writeChunk(sc, nil, heartbeatLine, now) || progressed
		sc.put(0)
	}
	if raw.err != nil {
		if c := h.Logger.Check(zap.DebugLevel, "subscriber write failed"); c != nil {
			c.Write(zap.String("client", ls.remote), zap.Error(raw.err))
		}
		ls.over = true
		return time.Time{}
	}
	if len(raw.rest) > 0 {
		if !ls.outArmed {
			ls.loop.watchWritable(ls, true)
			ls.outArmed = true
		}
		// Slowness is judged by progress: the write timeout runs from
		// the last time the socket took bytes, not from when a batch
		// was first offered, and the hub sees the same (Blocked).
		if progressed || ls.blockedAt == 0 {
			ls.blockedAt = now.UnixNano()
			sub.Unblocked()
			sub.Blocked()
		}
		if h.WriteTimeout > 0 {
			if time.Duration(now.UnixNano()-ls.blockedAt) >= h.WriteTimeout {
				if sub.Drop(hub.DropSlow) {
					h.LogDrop(hub.DropSlow, ls.remote, ls.refs)
				}
				ls.over = true
				return time.Time{}
			}
			next = earliest(next, time.Unix(0, ls.blockedAt).Add(h.WriteTimeout))
		}
	} else {
		if ls.outArmed {
			ls.loop.watchWritable(ls, false)
			ls.outArmed = false
		}
		if ls.blockedAt != 0 {
			ls.blockedAt = 0
			sub.Unblocked()
		}
	}
	if h.Heartbeat > 0 {
		next = earliest(next, g.last.Add(h.Heartbeat))
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// writeQueued writes the subscriber's queue without blocking, a writev's
// worth at a time, until it is empty or the socket is full. It reports
// whether the socket took any bytes. The gate is held.
func (ls *loopStream) writeQueued(now time.Time) bool {
	raw, progressed := ls.raw, false
	sc := getScratch() // not in the stream: an idle stream keeps none
	for raw.err == nil && len(raw.rest) == 0 {
		batch := ls.sub.TakeAtMost(sc.evs[:0], len(sc.evs))
		if len(batch) == 0 {
			break
		}
		progressed = raw.writeChunk(sc, batch, nil, now) || progressed
		clear(batch) // do not pin events past their rings
	}
	sc.put(0)
	return progressed
}

// close ends a stream step marked over: the socket is forgotten and
// closed, and the subscription released off whoever serviced it.
func (ls *loopStream) close() {
	g := &ls.raw.gate
	g.mu.Lock()
	ls.raw.err = errStreamEnded // no writer touches the descriptor after this
	ls.fdmu.Lock()
	ls.loop.remove(ls)
	if ls.owned {
		_ = unix.Close(ls.fd)
	} else {
		_ = ls.raw.conn.Close()
	}
	ls.fd = -1
	ls.fdmu.Unlock()
	g.mu.Unlock()
	ls.wheel.disarm(ls)
	if ls.ended != nil {
		go ls.ended()
	}
}
