//go:build linux

package stream

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// loopStream is a hijacked stream as its event loop knows it
// (loop_linux.go). From the hijack on, the loop watches its socket for the
// client leaving (closing gone, which the stream's goroutine waits on
// while it sends the replay). Once driven, the goroutine has ended and the
// loop does what pump did: write what a publisher could not, heartbeats,
// the coalesce window, the write timeout, drops and goodbyes.
type loopStream struct {
	raw    *rawStream
	h      *Streamer
	sub    *hub.Subscription
	loop   *eventLoop
	fd     int
	remote string
	refs   []hub.TopicRef
	ended  func() // unsubscribes and releases (Stream's done); run off the loop

	goneOnce  sync.Once
	driven    atomic.Bool // the loop serves the stream: its goroutine has ended
	scheduled atomic.Bool // on the loop's todo list

	// The loop goroutine's alone:
	over      bool      // ended: nothing more is done
	wakeAt    time.Time // the time the loop services it next (timerHeap)
	outArmed  bool      // EPOLLOUT is watched
	blockedAt time.Time // since when bytes wait for room without the socket taking any
	batch     []*hub.Event
}

// newLoopStream registers raw's socket with an event loop, which then
// closes raw.gone when the client leaves; nil when no loop can take it
// (raw.watch does that instead).
func newLoopStream(raw *rawStream) *loopStream {
	if raw.rawConn == nil {
		return nil
	}
	fd := -1
	if err := raw.rawConn.Control(func(d uintptr) { fd = int(d) }); err != nil || fd < 0 {
		return nil
	}
	l := loopFor(fd)
	if l == nil {
		return nil
	}
	ls := &loopStream{raw: raw, sub: raw.sub, loop: l, fd: fd}
	if l.add(ls) != nil {
		return nil
	}
	return ls
}

// readable reads what made the socket readable: the client closing its
// side, or sending bytes, which an EventSource never does after its
// request (rawStream.watch). Either way the stream is over.
func (ls *loopStream) readable() {
	if ls.over {
		return
	}
	var b [1]byte
	n, rerr := 0, error(nil)
	// Control keeps the descriptor from being closed (and reused) while
	// it is read.
	if err := ls.raw.rawConn.Control(func(fd uintptr) { n, rerr = unix.Read(int(fd), b[:]) }); err != nil {
		rerr = err
	}
	if n < 0 && (errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR)) {
		return // nothing after all
	}
	if n > 0 {
		ls.raw.misbehaved.Store(true)
	}
	ls.loop.remove(ls) // level-triggered: stop hearing about it
	ls.goneOnce.Do(func() { close(ls.raw.gone) })
	if ls.driven.Load() {
		ls.service(time.Now())
	}
}

// drive hands the stream to the loop once its replay is out: its goroutine
// returns after this, and the loop ends the stream (ended runs then).
func (ls *loopStream) drive(h *Streamer, remote string, refs []hub.TopicRef, ended func()) {
	ls.h, ls.remote, ls.refs, ls.ended = h, remote, refs, ended
	g := &ls.raw.gate
	g.mu.Lock()
	g.live, g.last = true, time.Now()
	g.mu.Unlock()
	h.watchStopping()
	ls.driven.Store(true)
	ls.loop.schedule(ls) // what was queued meanwhile, and the first heartbeat
}

// wake has the loop look at a driven stream: a publisher could not write
// its events, or the hub dropped it. False before it is driven: its
// goroutine then waits for them itself.
func (ls *loopStream) wake() bool {
	if ls == nil || !ls.driven.Load() {
		return false
	}
	ls.loop.schedule(ls)
	return true
}

// detach forgets the socket before the stream's goroutine closes it.
func (ls *loopStream) detach() {
	if ls != nil {
		ls.loop.remove(ls)
	}
}

// service does, on the loop, whatever the stream needs now: end it, write
// what waits (after the coalesce window), a heartbeat, and arm the times
// it needs the loop next.
func (ls *loopStream) service(now time.Time) {
	if ls.over || !ls.driven.Load() {
		return
	}
	raw, sub, h := ls.raw, ls.sub, ls.h
	select {
	case <-h.Stopping:
		// Before Done: a stopping configuration also closes its hubs,
		// which drops every subscriber, and each still gets its goodbye.
		sub.Drop(hub.DropShutdown)
		ls.goodbye()
		return
	default:
	}
	select {
	case <-sub.Done():
		// Dropped: its socket stopped taking bytes while its queue was
		// full, or the hub closed. The client resumes by id.
		if reason := sub.DropReason(); reason == hub.DropSlow || reason == hub.DropOverload {
			h.LogDrop(reason, ls.remote, ls.refs)
		}
		ls.end(false)
		return
	case <-raw.gone:
		if raw.misbehaved.Load() && sub.Drop(hub.DropProtocol) {
			h.LogDrop(hub.DropProtocol, ls.remote, ls.refs)
		}
		ls.end(false)
		return
	default:
	}

	g := &raw.gate
	g.mu.Lock()
	progressed := raw.writeRest()
	if raw.err == nil && len(raw.rest) == 0 {
		gather := time.Duration(0)
		if h.Coalesce > 0 && !sub.PastHalf() {
			gather = h.Coalesce - now.Sub(g.last)
		}
		if gather > 0 && sub.Queued() > 0 {
			// Written less than a window ago: gather until it ends
			// (pump). Publishers leave the stream to the loop meanwhile.
			g.gathering = true
			ls.loop.timers.wake(ls, g.last.Add(h.Coalesce))
		} else {
			g.gathering = false
			progressed = ls.writeQueued(now) || progressed
		}
	}
	if raw.err == nil && len(raw.rest) == 0 && h.Heartbeat > 0 && now.Sub(g.last) >= h.Heartbeat {
		raw.add(heartbeatLine)
		progressed = raw.writeAdded(now) || progressed
	}
	last, err, waiting := g.last, raw.err, len(raw.rest) > 0
	g.mu.Unlock()

	if err != nil {
		if c := h.Logger.Check(zap.DebugLevel, "subscriber write failed"); c != nil {
			c.Write(zap.String("client", ls.remote), zap.Error(err))
		}
		ls.end(false)
		return
	}
	if waiting {
		if !ls.outArmed {
			ls.loop.watchWritable(ls, true)
			ls.outArmed = true
		}
		// Slowness is judged by progress: the write timeout runs from
		// the last time the socket took bytes, not from when a batch
		// was first offered, and the hub sees the same (Blocked).
		if progressed || ls.blockedAt.IsZero() {
			ls.blockedAt = now
			sub.Unblocked()
			sub.Blocked()
		}
		if h.WriteTimeout > 0 {
			if now.Sub(ls.blockedAt) >= h.WriteTimeout {
				if sub.Drop(hub.DropSlow) {
					h.LogDrop(hub.DropSlow, ls.remote, ls.refs)
				}
				ls.end(false)
				return
			}
			ls.loop.timers.wake(ls, ls.blockedAt.Add(h.WriteTimeout))
		}
	} else {
		if ls.outArmed {
			ls.loop.watchWritable(ls, false)
			ls.outArmed = false
		}
		if !ls.blockedAt.IsZero() {
			ls.blockedAt = time.Time{}
			sub.Unblocked()
		}
	}
	if h.Heartbeat > 0 {
		ls.loop.timers.wake(ls, last.Add(h.Heartbeat))
	}
}

// writeQueued writes the subscriber's queue without blocking, a writev's
// worth at a time, until it is empty or the socket is full. It reports
// whether the socket took any bytes. The gate is held.
func (ls *loopStream) writeQueued(now time.Time) bool {
	raw, progressed := ls.raw, false
	for raw.err == nil && len(raw.rest) == 0 {
		ls.batch = ls.sub.TakeAtMost(ls.batch[:0], maxIovecs-2)
		if len(ls.batch) == 0 {
			break
		}
		for _, ev := range ls.batch {
			raw.add(ev.Wire)
		}
		clear(ls.batch) // do not pin events past their rings
		progressed = raw.writeAdded(now) || progressed
	}
	return progressed
}

// goodbye ends the stream on reload or shutdown with a quick, jittered
// reconnect hint (Streamer.goodbye), if the socket takes it at once: one
// that is full belongs to a client that reconnects with its own delay.
func (ls *loopStream) goodbye() {
	raw := ls.raw
	g := &raw.gate
	g.mu.Lock()
	raw.writeRest()
	if raw.err == nil && len(raw.rest) == 0 {
		raw.add(goodbyeRetry())
		raw.writeAdded(time.Now())
	}
	g.mu.Unlock()
	ls.end(true)
}

// end closes the stream: the chunked body's end when clean says the
// server ended it (a goodbye), and its subscription is released off the
// loop.
func (ls *loopStream) end(clean bool) {
	ls.over = true
	ls.wakeAt = time.Time{}
	ls.loop.remove(ls)
	raw := ls.raw
	g := &raw.gate
	g.mu.Lock()
	if clean && raw.err == nil && len(raw.rest) == 0 && !raw.unframed {
		_, _ = raw.tryWrite([][]byte{chunkedEnd})
	}
	raw.err = errStreamEnded
	g.mu.Unlock()
	_ = raw.conn.Close()
	if ls.ended != nil {
		go ls.ended()
	}
}

// watchStopping starts, once per streamer, the goroutine that has every
// loop say goodbye to the streamer's streams when its configuration stops.
func (h *Streamer) watchStopping() {
	if h.Stopping == nil {
		return
	}
	h.stopWatch.Do(func() {
		go func() {
			<-h.Stopping
			for _, l := range loops {
				l.scheduleAll(h)
			}
		}()
	})
}
