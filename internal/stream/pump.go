package stream

import (
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"
	"go.uber.org/zap"
)

// Fixed bytes of the stream.
var (
	streamOpening = []byte(": caddy-sse\n\n")
	heartbeatLine = []byte(": heartbeat\n\n")
)

// maxBatchBytes bounds how much a subscriber's writer gathers from its queue
// before flushing: many queued events leave in one flush, yet a backlog does
// not become one giant write.
const maxBatchBytes = 64 << 10

// sink is where a subscriber's bytes go: the ResponseWriter (HTTP/2, HTTP/3)
// or a hijacked HTTP/1.1 connection.
type sink interface {
	add(b []byte)          // queue bytes for the next flush
	flush() error          // send what was added
	buffered() int         // bytes added since the last flush
	setDeadline(time.Time) // bound the final writes (drop, shutdown)
	writeTimeout() time.Duration
	gateOf() *writeGate
}

// writeGate is what the stream's goroutine shares with writers from outside
// it (rawStream.writeNow): one writes at a time, holding mu.
type writeGate struct {
	mu        sync.Mutex
	live      bool      // the replay is out: live events may be written by others
	gathering bool      // the goroutine waits out the coalesce window
	last      time.Time // when bytes were last written
}

// serve sends the opening, the retry field, a reset and the replay, then
// live events until the client leaves (gone, called only if it is waited
// on: its channel may be made on demand), is dropped as slow, the
// configuration stops, or the route ends the stream (end). The subscriber
// was registered before the opening was sent, so nothing published after
// the client read it is missed.
//
// A hijacked stream with an event loop is handed over once its replay is
// out: serve then returns true, and ended runs when the stream is over
// (loop_stream.go); endAt is when end closes.
func (h *Streamer) serve(s sink, sub *hub.Subscription, replay hub.Replay, gone func() <-chan struct{}, end <-chan struct{}, endAt time.Time, remote string, refs []hub.TopicRef, ended func()) (handedOff bool) {
	s.add(streamOpening)
	if h.Retry > 0 {
		s.add(hub.RetryField(h.Retry))
	}
	if replay.Later != nil {
		if s.flush() != nil {
			return false
		}
		// Its live events wait in its queue until the replay is out: it
		// takes nothing meanwhile, so publishers must not wait for it.
		sub.Park(true)
		var ok bool
		if replay, ok = h.awaitReplay(s, sub, replay.Later, gone(), end); !ok {
			return false
		}
		sub.Park(false)
	}
	if replay.Reset != nil && !h.NoReset {
		s.add(replay.Reset.Wire())
	}
	if s.flush() != nil {
		return false
	}
	for _, ev := range replay.Events {
		s.add(ev.Wire)
		if s.buffered() >= maxBatchBytes && s.flush() != nil {
			return false
		}
	}
	if s.flush() != nil {
		return false
	}
	if raw, ok := s.(*rawStream); ok && raw.ls != nil {
		raw.ls.drive(h, remote, refs, endAt, ended)
		return true
	}
	h.pump(s, sub, gone(), end, remote, refs)
	return false
}

// awaitReplay holds a resuming stream open while the engine (Redis) cannot
// be read, with heartbeats, until its replay arrives. A 503 would make a
// browser give up for good; an open stream lets it resume by itself.
func (h *Streamer) awaitReplay(s sink, sub *hub.Subscription, later <-chan hub.Replay, gone, end <-chan struct{}) (hub.Replay, bool) {
	var heartbeat <-chan time.Time
	if h.Heartbeat > 0 {
		t := time.NewTicker(h.Heartbeat)
		defer t.Stop()
		heartbeat = t.C
	}
	for {
		select {
		case rp := <-later:
			return rp, true
		case <-heartbeat:
			s.add(heartbeatLine)
			if s.flush() != nil {
				return hub.Replay{}, false
			}
		case <-sub.Done():
			s.setDeadline(time.Now())
			return hub.Replay{}, false
		case <-h.Stopping:
			sub.Drop(hub.DropShutdown)
			h.goodbye(s)
			return hub.Replay{}, false
		case <-gone:
			return hub.Replay{}, false
		case <-end:
			return hub.Replay{}, false
		}
	}
}

// goodbye ends a stream on reload or shutdown with a quick, jittered
// reconnect hint. The deadline stays armed so a stuck client cannot hold up
// the server's shutdown with the final write.
func (h *Streamer) goodbye(s sink) {
	s.add(goodbyeRetry())
	_ = s.flush()
	s.setDeadline(time.Now().Add(s.writeTimeout()))
}

// goodbyeRetry is the retry field a stream ends with on reload or shutdown:
// between half a second and one and a half, so that clients do not all
// come back at once.
func goodbyeRetry() []byte {
	return hub.RetryField(time.Duration(500+rand.IntN(1000)) * time.Millisecond)
}

// pump copies live events to the client until it leaves, is dropped as slow
// or the configuration stops.
//
// Coalescing: a stream that was written less than `coalesce` ago waits out
// the rest of that window before writing again, gathering what arrives
// meanwhile into the same write. A quiet stream writes at once; a busy one
// makes one syscall per window instead of one per event, which is what
// bounds throughput once every core is busy.
func (h *Streamer) pump(s sink, sub *hub.Subscription, gone, end <-chan struct{}, remote string, refs []hub.TopicRef) {
	g := s.gateOf()
	g.mu.Lock()
	g.live, g.last = true, time.Now()
	g.mu.Unlock()
	// The heartbeat timer is not re-armed by every write (writes may come
	// from elsewhere): when it fires after a write, it waits out the rest.
	var heartbeat <-chan time.Time
	var timer *time.Timer
	if h.Heartbeat > 0 {
		timer = time.NewTimer(h.Heartbeat)
		defer timer.Stop()
		heartbeat = timer.C
	}
	var (
		batch     []*hub.Event
		gather    *time.Timer
		gathering <-chan time.Time // the coalesce window's end, while gathering
		urgent    <-chan struct{}  // the queue passed half its bound, while gathering
		ready     = sub.Ready()    // nil while gathering: events then wait without waking us
	)
	endGathering := func() { gathering, urgent, ready = nil, nil, sub.Ready() }
	for {
		// Wait for a reason to write; the gate is not held while waiting.
		beat := false
		select {
		case <-ready:
			if wait := g.startGathering(h.Coalesce); wait > 0 {
				if gather == nil {
					gather = time.NewTimer(wait)
					defer gather.Stop()
				} else {
					gather.Reset(wait)
				}
				gathering, urgent, ready = gather.C, sub.Urgent(), nil
				continue
			}
		case <-urgent:
			// Past half the queue: write now rather than let publishers
			// wait for the window to end.
			gather.Stop() // Go 1.23+: no stale tick follows a Stop
			endGathering()
		case <-gathering:
			endGathering()
		case <-heartbeat:
			if idle := g.idle(); idle < h.Heartbeat {
				timer.Reset(h.Heartbeat - idle)
				continue
			}
			timer.Reset(h.Heartbeat)
			beat = true
		case <-sub.Done():
			// Dropped: its socket stopped taking bytes while its queue was
			// full, or the hub closed. The client resumes by id. An expired
			// deadline makes the final write fail at once, closing the
			// connection instead of blocking on a full socket.
			if reason := sub.DropReason(); reason == hub.DropSlow || reason == hub.DropOverload {
				h.LogDrop(reason, remote, refs)
			}
			g.mu.Lock()
			s.setDeadline(time.Now())
			g.mu.Unlock()
			return
		case <-h.Stopping:
			sub.Drop(hub.DropShutdown)
			g.mu.Lock()
			h.goodbye(s)
			g.mu.Unlock()
			return
		case <-gone:
			return
		case <-end:
			// The route ends the stream (a token expired): a clean end,
			// which the client follows by reconnecting.
			return
		}
		// Write, holding the gate: a publisher writing this stream
		// directly (writeNow) stays out meanwhile.
		g.mu.Lock()
		g.gathering = false
		if beat {
			s.add(heartbeatLine)
		}
		ok := h.writeQueued(s, sub, &batch)
		err := s.flush()
		g.last = time.Now()
		g.mu.Unlock()
		if !ok || err != nil {
			// A write that outlasted write_timeout: the peer stopped
			// reading. Anything else is the client leaving.
			if errors.Is(err, os.ErrDeadlineExceeded) && sub.Drop(hub.DropSlow) {
				h.LogDrop(hub.DropSlow, remote, refs)
			} else if reason := sub.DropReason(); reason == hub.DropSlow || reason == hub.DropOverload {
				// The hub dropped it while this write was blocked: the
				// write only failed once its deadline came.
				h.LogDrop(reason, remote, refs)
			} else if c := h.Logger.Check(zap.DebugLevel, "subscriber write failed"); c != nil {
				c.Write(zap.String("client", remote), zap.Error(err))
			}
			return
		}
	}
}

// startGathering decides, when events are ready, whether to write now or
// gather them until the coalesce window since the last write ends: it
// returns how long to gather (0: write now) and marks the stream as
// gathering, which keeps writeNow from writing meanwhile.
func (g *writeGate) startGathering(coalesce time.Duration) time.Duration {
	if coalesce <= 0 {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	wait := coalesce - time.Since(g.last)
	if wait > 0 {
		g.gathering = true
	}
	return max(wait, 0)
}

// idle is how long ago the stream was last written.
func (g *writeGate) idle() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Since(g.last)
}

// writeQueued adds everything queued for sub, flushing every 64 KiB; the
// caller flushes the rest. It reports false when the client is gone.
func (h *Streamer) writeQueued(s sink, sub *hub.Subscription, batch *[]*hub.Event) bool {
	*batch = sub.Take((*batch)[:0])
	for _, ev := range *batch {
		s.add(ev.Wire)
		if s.buffered() >= maxBatchBytes && s.flush() != nil {
			return false
		}
	}
	clear(*batch) // do not pin events past their rings
	return true
}
