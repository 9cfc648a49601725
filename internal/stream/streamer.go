// Package stream is what an event stream needs, shared by the sse and
// sse_mercure routes: the response headers, the pump that writes a
// subscription's replay and live events with heartbeats and coalescing,
// the HTTP/1.1 hand-off (rawstream.go), write deadlines, the "come back
// later" answer, and CORS. It sits between the core (internal/hub) and the
// routes: it knows HTTP and Caddy's response writers, not the routes'
// configuration.
package stream

import (
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/logthrottle"
	"go.uber.org/zap"
)

// Defaults of a stream's settings (docs/reference.md).
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultQueue        = 256
	DefaultQueueSize    = 1 << 20
	DefaultWriteTimeout = 10 * time.Second
	DefaultCoalesce     = 10 * time.Millisecond
)

// Streamer writes the event streams of one route. Its settings are fixed
// once the route is provisioned; Stream may then run concurrently.
type Streamer struct {
	// QueueSize bounds the bytes waiting per subscriber.
	QueueSize int64
	// WriteTimeout drops a subscriber whose stream makes no progress for
	// this long (a socket taking no byte on the HTTP/1.1 event loop, no
	// writePiece taken on HTTP/2 and HTTP/3), so a reader that keeps
	// reading is not dropped for one long write; 0: none.
	WriteTimeout time.Duration
	// Retry, when positive, is sent as the stream's retry field.
	Retry time.Duration
	// Heartbeat is the silence after which a comment is sent; 0: none.
	Heartbeat time.Duration
	// Coalesce is the window a busy stream gathers events in before its
	// next write; 0 writes each event at once.
	Coalesce time.Duration
	// MaxSubscribers bounds the open streams (Enter); 0: no limit.
	MaxSubscribers int
	// NoReset leaves the "reset" event out (Mercure clients expect none).
	NoReset bool
	// Stopping is closed when the configuration stops: every stream then
	// says goodbye with a short retry.
	Stopping <-chan struct{}
	// Logger gets the debug lines of each stream and the dropped
	// subscribers' warnings (a line per reason per second).
	Logger *zap.Logger

	subscribers atomic.Int64
	dropLog     logthrottle.Throttle
}

// Enter counts a stream opening; false (and nothing counted) when the route
// already serves MaxSubscribers. Each true is paired with a Leave.
func (h *Streamer) Enter() bool {
	if n := h.subscribers.Add(1); h.MaxSubscribers > 0 && n > int64(h.MaxSubscribers) {
		h.subscribers.Add(-1)
		return false
	}
	return true
}

// Leave counts a stream ended (or a subscribe that failed after Enter).
func (h *Streamer) Leave() { h.subscribers.Add(-1) }

// Subscribers is how many streams are open.
func (h *Streamer) Subscribers() int64 { return h.subscribers.Load() }

// Stream sends a registered subscription's replay and live events to the
// client until it leaves, is dropped, the configuration stops, or endAt
// comes (zero: never; sse_mercure's is the subscriber's token expiry), when
// the stream ends cleanly. It is what the sse and sse_mercure routes share
// once they have subscribed; release runs when the stream is over, after
// sub is closed. The response headers are set by the caller; Stream writes
// the status.
func (h *Streamer) Stream(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, replay hub.Replay, refs []hub.TopicRef, endAt time.Time, release func()) error {
	sub.LimitBytes(h.QueueSize)
	client := ClientForLog(r)
	since := time.Now()
	done := func() {
		sub.Close()
		release()
		if c := h.Logger.Check(zap.DebugLevel, "unsubscribed"); c != nil {
			c.Write(zap.Strings("topics", TopicNames(refs)), zap.String("client", client),
				zap.Duration("duration", time.Since(since)), zap.Stringer("dropped", sub.DropReason()))
		}
	}
	// A goroutine serving the stream waits on end; a driven stream's
	// timer looks at endAt itself (loop_stream.go).
	var end <-chan struct{}
	if !endAt.IsZero() {
		ch := make(chan struct{})
		t := time.AfterFunc(time.Until(endAt), func() { close(ch) })
		end = ch
		unsubscribe := done
		done = func() { t.Stop(); unsubscribe() }
	}
	timeout := h.WriteTimeout
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
	// are released, and a goroutine with a small stack of its own sends
	// the replay. Then, on Linux, an event loop serves the stream and the
	// goroutine ends (loop_linux.go): an idle stream holds no goroutine.
	if r.ProtoMajor == 1 {
		// HTTP/1.0 has no chunked framing: its stream is unframed and
		// ends when the connection closes.
		if raw := hijackStream(w, timeout, sub, r.ProtoMinor == 0); raw != nil {
			raw.coalesce = h.Coalesce
			sub.SetNotifier(raw)
			go func() {
				handedOff := false
				defer func() {
					if !handedOff {
						done()
					}
				}()
				if handedOff = h.serve(raw, sub, replay, raw.gone.wait, end, endAt, client, refs, done); handedOff {
					return // the loop ends the stream, and calls done
				}
				if raw.misbehaved.Load() && sub.Drop(hub.DropProtocol) {
					h.LogDrop(hub.DropProtocol, client, refs)
				}
				raw.finish()
			}()
			return nil
		}
	}
	defer done()
	s := newResponseSink(w, timeout)
	s.sub = sub
	defer s.release()
	h.serve(s, sub, replay, r.Context().Done, end, endAt, client, refs, nil)
	return nil
}

// comeBackLater answers 200 with a jittered retry of several seconds and
// closes: EventSource reconnects later by itself, where a 503 would make it
// give up for good.
func (h *Streamer) ComeBackLater(w http.ResponseWriter, why string) error {
	w.WriteHeader(http.StatusOK)
	s := newResponseSink(w, h.WriteTimeout)
	defer s.release()
	s.add(hub.RetryField(time.Duration(5000+rand.IntN(10000)) * time.Millisecond))
	s.add([]byte(": " + why + "; come back later\n\n"))
	_ = s.flush()
	return nil
}

// clientForLog is the client's address as Caddy judged it (trusted_proxies
// honoured), else the connection's peer.
func ClientForLog(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// LogDrop warns, throttled, that the server closed a subscriber's stream.
func (h *Streamer) LogDrop(reason hub.DropReason, remote string, refs []hub.TopicRef) {
	ok, suppressed := h.dropLog.Allow(reason.String())
	if !ok {
		return
	}
	if c := h.Logger.Check(zap.WarnLevel, "subscriber dropped"); c != nil {
		c.Write(zap.String("reason", reason.String()), zap.String("client", remote),
			zap.Strings("topics", TopicNames(refs)), zap.Int("suppressed", suppressed))
	}
}

func TopicNames(refs []hub.TopicRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}
