package caddysse

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ssehub/caddy-sse/internal/hub"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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

// ServeHTTP serves an event stream. The subscriber is registered with the
// hub before anything is flushed, so once a client has read the opening
// comment, every event published after that reaches it.
func (h *SSEHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if h.cors != nil {
		if answered, err := h.cors.handle(w, r); answered {
			return err
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return plainError(w, http.StatusMethodNotAllowed, "event streams are read with GET")
	}
	// Parse the query strictly: URL.Query drops what it cannot parse, and a
	// mistyped ?topic= must not quietly become "all topics".
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return plainError(w, http.StatusBadRequest, "malformed query: "+err.Error())
	}
	refs, status, msg := h.resolveTopics(r, query)
	if status != 0 {
		return plainError(w, status, msg)
	}

	if streamHeaders(w, r, "no-cache, no-transform") {
		return nil
	}

	if n := h.subscribers.Add(1); h.MaxSubscribers > 0 && n > int64(h.MaxSubscribers) {
		h.subscribers.Add(-1)
		return h.comeBackLater(w, "too many subscribers on this route")
	}

	sub, replay, err := h.hub.Subscribe(refs, lastEventID(r, query), h.Queue)
	if errors.Is(err, hub.ErrTooManyTopics) {
		h.subscribers.Add(-1)
		return h.comeBackLater(w, "too many topics in this hub")
	}
	if err != nil {
		h.subscribers.Add(-1)
		return plainError(w, http.StatusServiceUnavailable, "event hub unavailable: "+err.Error())
	}
	left := h.presenceJoin(r, refs)
	release := func() {
		h.subscribers.Add(-1)
		left()
	}
	if c := h.logger.Check(zap.DebugLevel, "subscribed"); c != nil {
		c.Write(zap.Strings("topics", topicNames(refs)), zap.String("client", clientForLog(r)),
			zap.Int("replayed", len(replay.Events)), zap.Bool("reset", replay.Reset != nil))
	}
	return h.stream(w, r, sub, replay, refs, nil, release)
}

// stream sends a registered subscription's replay and live events to the
// client until it leaves, is dropped, the configuration stops, or end is
// closed (nil: never; sse_mercure closes it when the subscriber's token
// expires). It is what the sse and sse_mercure routes share once they have
// subscribed; release runs when the stream is over, after sub is closed.
// The response headers are set by the caller; stream writes the status.
func (h *SSEHandler) stream(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, replay hub.Replay, refs []hub.TopicRef, end <-chan struct{}, release func()) error {
	sub.LimitBytes(int64(h.QueueSize))
	client := clientForLog(r)
	since := time.Now()
	done := func() {
		sub.Close()
		release()
		if c := h.logger.Check(zap.DebugLevel, "unsubscribed"); c != nil {
			c.Write(zap.Strings("topics", topicNames(refs)), zap.String("client", client),
				zap.Duration("duration", time.Since(since)), zap.Stringer("dropped", sub.DropReason()))
		}
	}
	timeout := time.Duration(h.WriteTimeout)
	if r.ProtoMajor == 1 {
		// The connection ends with the stream (it is taken over below):
		// say so, or a client that reads a clean end of stream would
		// put the connection back in its pool and fail its next request.
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(http.StatusOK)

	// HTTP/1.1: once Caddy has sent the headers (header directives, the
	// access log and encode all saw a normal 200), the connection is taken
	// over. net/http's goroutines and buffers and Caddy's per-request state
	// are released, and a goroutine with a small stack of its own serves
	// the stream: a third of the memory per idle subscriber.
	if r.ProtoMajor == 1 {
		// HTTP/1.0 has no chunked framing: its stream is unframed and
		// ends when the connection closes.
		if raw := hijackStream(w, timeout, sub, r.ProtoMinor == 0); raw != nil {
			coalesce := time.Duration(h.coalesce)
			sub.SetWriteNow(func() bool { return raw.writeNow(sub, coalesce) })
			go func() {
				defer done()
				h.serve(raw, sub, replay, raw.gone, end, client, refs)
				if raw.misbehaved.Load() && sub.Drop(hub.DropProtocol) {
					h.logDrop(hub.DropProtocol, client, refs)
				}
				raw.finish()
			}()
			return nil
		}
	}
	defer done()
	s := newStream(w, timeout)
	s.sub = sub
	defer s.release()
	h.serve(s, sub, replay, r.Context().Done(), end, client, refs)
	return nil
}

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
// live events until the client leaves (gone), is dropped as slow, the
// configuration stops, or the route ends the stream (end). The subscriber
// was registered before the opening was sent, so nothing published after
// the client read it is missed.
func (h *SSEHandler) serve(s sink, sub *hub.Subscription, replay hub.Replay, gone, end <-chan struct{}, remote string, refs []hub.TopicRef) {
	s.add(streamOpening)
	if h.Retry > 0 {
		s.add(hub.RetryField(time.Duration(h.Retry)))
	}
	if replay.Later != nil {
		if s.flush() != nil {
			return
		}
		// Its live events wait in its queue until the replay is out: it
		// takes nothing meanwhile, so publishers must not wait for it.
		sub.Park(true)
		var ok bool
		if replay, ok = h.awaitReplay(s, sub, replay.Later, gone, end); !ok {
			return
		}
		sub.Park(false)
	}
	if replay.Reset != nil && !h.noReset {
		s.add(replay.Reset.Wire())
	}
	if s.flush() != nil {
		return
	}
	for _, ev := range replay.Events {
		s.add(ev.Wire)
		if s.buffered() >= maxBatchBytes && s.flush() != nil {
			return
		}
	}
	if s.flush() != nil {
		return
	}
	h.pump(s, sub, gone, end, remote, refs)
}

// awaitReplay holds a resuming stream open while the engine (Redis) cannot
// be read, with heartbeats, until its replay arrives. A 503 would make a
// browser give up for good; an open stream lets it resume by itself.
func (h *SSEHandler) awaitReplay(s sink, sub *hub.Subscription, later <-chan hub.Replay, gone, end <-chan struct{}) (hub.Replay, bool) {
	var heartbeat <-chan time.Time
	if h.heartbeat > 0 {
		t := time.NewTicker(h.heartbeat)
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
		case <-h.app.stopping:
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
func (h *SSEHandler) goodbye(s sink) {
	s.add(hub.RetryField(time.Duration(500+rand.IntN(1000)) * time.Millisecond))
	_ = s.flush()
	s.setDeadline(time.Now().Add(s.writeTimeout()))
}

// pump copies live events to the client until it leaves, is dropped as slow
// or the configuration stops.
//
// Coalescing: a stream that was written less than `coalesce` ago waits out
// the rest of that window before writing again, gathering what arrives
// meanwhile into the same write. A quiet stream writes at once; a busy one
// makes one syscall per window instead of one per event, which is what
// bounds throughput once every core is busy.
func (h *SSEHandler) pump(s sink, sub *hub.Subscription, gone, end <-chan struct{}, remote string, refs []hub.TopicRef) {
	g := s.gateOf()
	g.mu.Lock()
	g.live, g.last = true, time.Now()
	g.mu.Unlock()
	// The heartbeat timer is not re-armed by every write (writes may come
	// from elsewhere): when it fires after a write, it waits out the rest.
	var heartbeat <-chan time.Time
	var timer *time.Timer
	if h.heartbeat > 0 {
		timer = time.NewTimer(h.heartbeat)
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
			if wait := g.startGathering(h.coalesce); wait > 0 {
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
			if idle := g.idle(); idle < h.heartbeat {
				timer.Reset(h.heartbeat - idle)
				continue
			}
			timer.Reset(h.heartbeat)
			beat = true
		case <-sub.Done():
			// Dropped: its socket stopped taking bytes while its queue was
			// full, or the hub closed. The client resumes by id. An expired
			// deadline makes the final write fail at once, closing the
			// connection instead of blocking on a full socket.
			if reason := sub.DropReason(); reason == hub.DropSlow || reason == hub.DropOverload {
				h.logDrop(reason, remote, refs)
			}
			g.mu.Lock()
			s.setDeadline(time.Now())
			g.mu.Unlock()
			return
		case <-h.app.stopping:
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
				h.logDrop(hub.DropSlow, remote, refs)
			} else if c := h.logger.Check(zap.DebugLevel, "subscriber write failed"); c != nil {
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
func (h *SSEHandler) writeQueued(s sink, sub *hub.Subscription, batch *[]*hub.Event) bool {
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

// comeBackLater answers 200 with a jittered retry of several seconds and
// closes: EventSource reconnects later by itself, where a 503 would make it
// give up for good.
func (h *SSEHandler) comeBackLater(w http.ResponseWriter, why string) error {
	w.WriteHeader(http.StatusOK)
	s := newStream(w, time.Duration(h.WriteTimeout))
	defer s.release()
	s.add(hub.RetryField(time.Duration(5000+rand.IntN(10000)) * time.Millisecond))
	s.add([]byte(": " + why + "; come back later\n\n"))
	_ = s.flush()
	return nil
}

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
type stream struct {
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

func newStream(w http.ResponseWriter, timeout time.Duration) *stream {
	s := &stream{w: w, rc: http.NewResponseController(w), timeout: timeout}
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

func (s *stream) gateOf() *writeGate          { return &s.gate }
func (s *stream) buffered() int               { return s.pending }
func (s *stream) writeTimeout() time.Duration { return s.timeout }

// release gives Caddy's writer back its own settings.
func (s *stream) release() {
	if s.restore != nil {
		s.restore()
	}
}

func (s *stream) add(b []byte) {
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

func (s *stream) flush() error {
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
func (s *stream) setDeadline(t time.Time) {
	// HTTP/3 and some wrapped writers cannot set deadlines; the stream
	// then relies on the queue bound alone.
	_ = s.rc.SetWriteDeadline(t)
}

// lastEventID is the client's resume point: the Last-Event-ID header, else
// the last_event_id query parameter (for a page resuming on first connect).
func lastEventID(r *http.Request, query url.Values) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return query.Get("last_event_id")
}

// resolveTopics turns the request into the topics it subscribes to. It
// answers an HTTP status and message when the request cannot be served.
func (h *SSEHandler) resolveTopics(r *http.Request, query url.Values) ([]hub.TopicRef, int, string) {
	if h.Grant != "" {
		return h.resolveGranted(r, query) // grant.go
	}
	offered, status, msg := h.resolvePerRequest(r)
	if status != 0 {
		return nil, status, msg
	}
	requested := query["topic"]
	if len(requested) > h.MaxTopicsPerSubscriber {
		return nil, http.StatusBadRequest, fmt.Sprintf("%d topics requested; this route allows %d per connection", len(requested), h.MaxTopicsPerSubscriber)
	}
	var names []string
	if len(requested) == 0 {
		names = append(append(names, h.literals...), offered...)
		if len(names) == 0 {
			return nil, http.StatusBadRequest, "name the topics to subscribe to with ?topic="
		}
	} else {
		for _, t := range requested {
			if err := hub.ValidTopicName(t); err != nil {
				return nil, http.StatusBadRequest, err.Error()
			}
			// An internal name is answered as any name the route does not
			// serve; serves would refuse it too (matchSegments).
			if hub.ClientTopicName(t) != nil || !h.serves(t, offered) {
				return nil, http.StatusNotFound, fmt.Sprintf("topic %q is not served here", t)
			}
			if !slices.Contains(names, t) {
				names = append(names, t)
			}
		}
	}
	refs := make([]hub.TopicRef, 0, len(names))
	for _, n := range names {
		ref, ok := h.table.Lookup(n)
		if !ok { // cannot happen: the route's own declarations are in the table
			return nil, http.StatusNotFound, fmt.Sprintf("topic %q is not declared", n)
		}
		refs = append(refs, ref)
	}
	return refs, 0, ""
}

func (h *SSEHandler) serves(name string, offered []string) bool {
	if slices.Contains(h.literals, name) || slices.Contains(offered, name) {
		return true
	}
	for _, segs := range h.wildcards {
		if hub.MatchSegments(segs, name) {
			return true
		}
	}
	return false
}

// resolvePerRequest resolves the placeholder topics for this subscriber: it
// gets exactly those, and an empty or invalid resolution is refused.
func (h *SSEHandler) resolvePerRequest(r *http.Request) ([]string, int, string) {
	if len(h.perRequest) == 0 {
		return nil, 0, ""
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return nil, http.StatusForbidden, "topic placeholders cannot be resolved"
	}
	out := make([]string, 0, len(h.perRequest))
	for _, d := range h.perRequest {
		name, err := repl.ReplaceOrErr(d.Name, true, true)
		if err != nil || hub.ClientTopicName(name) != nil || !hub.MatchSegments(hub.PatternSegments(d.Name), name) {
			return nil, http.StatusForbidden, "this request may not subscribe here"
		}
		out = append(out, name)
	}
	return out, 0, ""
}

func topicNames(refs []hub.TopicRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}

// plainError answers a subscribe error in plain text, not as an event
// stream, so a browser's EventSource stops instead of retrying.
func plainError(w http.ResponseWriter, status int, msg string) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
	return nil
}

// streamHeaders sets an event stream's response headers and answers a HEAD
// request with them, reporting true when it has. cacheControl carries
// no-transform, which keeps encode and other proxies from compressing or
// buffering the stream.
func streamHeaders(w http.ResponseWriter, r *http.Request, cacheControl string) bool {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("X-Accel-Buffering", "no")
	if r.Method != http.MethodHead {
		return false
	}
	w.WriteHeader(http.StatusOK)
	return true
}
