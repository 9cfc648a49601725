package caddysse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/logthrottle"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Defaults of the sse handler (docs/reference.md).
const (
	DefaultMaxTopicsPerSubscriber = 64
)

// SSEHandler serves declared topics to EventSource clients.
type SSEHandler struct {
	// Hub isolates topics: handlers of different hubs share nothing.
	// Default: "default".
	Hub string `json:"hub,omitempty"`
	// Topics this route serves.
	Topics []TopicConfig `json:"topics,omitempty"`
	// A comment is sent after this much silence; 0 disables it.
	// Default: 15s.
	Heartbeat *caddy.Duration `json:"heartbeat,omitempty"`
	// Reconnect delay sent to clients in a retry field. Default: none
	// (the browser's own).
	Retry caddy.Duration `json:"retry,omitempty"`
	// Open streams this route serves at once; beyond it clients are asked
	// to come back later. Default: no limit.
	MaxSubscribers int `json:"max_subscribers,omitempty"`
	// Events waiting per subscriber. A full queue makes publishers wait
	// while the subscriber's socket takes bytes, and drops the subscriber
	// once it has stopped taking them. Default: 256.
	Queue int `json:"queue,omitempty"`
	// Bytes waiting per subscriber, bounded like Queue. Default: 1MiB.
	QueueSize int64 `json:"queue_size,omitempty"`
	// A stream making no progress this long (its client taking no bytes)
	// drops the subscriber; one long write to a client that keeps reading
	// does not. Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// How many ?topic= one request may name. Default: 64.
	MaxTopicsPerSubscriber int `json:"max_topics_per_subscriber,omitempty"`
	// A stream written less than this long ago waits out the rest before
	// writing again, gathering events into one write: busy streams cost
	// one syscall per window instead of one per event. 0 writes every
	// event at once. Default: 10ms.
	Coalesce *caddy.Duration `json:"coalesce,omitempty"`
	// A placeholder the app fills per request with the topics this
	// subscriber may have, separated by commas or spaces
	// ("{http.reverse_proxy.header.X-Sse-Topics}" inside reverse_proxy's
	// handle_response). Each must be a topic the route declares; the
	// subscriber gets the granted topics and no others (?topic= picks
	// among them). Missing, empty or not all declared: 403. Default: none
	// (the route's topics are served as declared).
	Grant string `json:"grant,omitempty"`
	// Origins whose pages may open this route's streams with
	// EventSource(url, {withCredentials: true}): scheme://host[:port], or
	// "*" for any origin ("null" only when listed). Others get 403.
	// Default: none, and no CORS headers (internal/stream/cors.go).
	Origins []string `json:"origins,omitempty"`
	// Presence publishes join and leave events of the route's topics to
	// a topic (presence.go). Default: none.
	Presence *PresenceConfig `json:"presence,omitempty"`

	app         *App
	hub         hub.Engine
	table       *hub.TopicTable
	literals    []string        // served when no ?topic= is given
	perRequest  []hub.TopicDecl // names with placeholders, resolved per request
	wildcards   [][]string      // '*' patterns a subscriber may pick from
	heartbeat   time.Duration
	coalesce    time.Duration
	streamer    *stream.Streamer // writes the streams (internal/stream)
	logger      *zap.Logger
	dropLog     logthrottle.Throttle // warnings for dropped and refused subscribers (logs.go)
	topicPlaces []string             // file:line of each Topics entry, when adapted from a Caddyfile
	cors        *stream.CORSPolicy
	presence    *presenceTracker
	presenceKey trackerKey
}

// CaddyModule returns the Caddy module information.
func (*SSEHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sse", New: func() caddy.Module { return new(SSEHandler) }}
}

// Provision declares the handler's topics and applies defaults.
func (h *SSEHandler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Hub == "" {
		h.Hub = hub.DefaultHubName
	}
	h.heartbeat = stream.DefaultHeartbeat
	if h.Heartbeat != nil {
		h.heartbeat = time.Duration(*h.Heartbeat)
	}
	h.coalesce = stream.DefaultCoalesce
	if h.Coalesce != nil {
		h.coalesce = time.Duration(*h.Coalesce)
	}
	if h.Queue == 0 {
		h.Queue = stream.DefaultQueue
	}
	if h.QueueSize == 0 {
		h.QueueSize = stream.DefaultQueueSize
	}
	if h.WriteTimeout == 0 {
		h.WriteTimeout = caddy.Duration(stream.DefaultWriteTimeout)
	}
	if h.MaxTopicsPerSubscriber == 0 {
		h.MaxTopicsPerSubscriber = DefaultMaxTopicsPerSubscriber
	}
	var decls []hub.TopicDecl
	for _, tc := range h.Topics {
		ds, err := tc.decls()
		if err != nil {
			return err
		}
		decls = append(decls, ds...)
	}
	if err := validateGrant(h.Grant, decls); err != nil {
		return fmt.Errorf("sse: %v", err)
	}
	for _, d := range decls {
		switch {
		case d.HasPlaceholder():
			h.perRequest = append(h.perRequest, d)
		case d.IsLiteral():
			h.literals = append(h.literals, d.Name)
		default:
			h.wildcards = append(h.wildcards, hub.PatternSegments(d.Name))
			if d.MaxTopics <= h.MaxTopicsPerSubscriber {
				// Held topics are never forgotten: one connection could
				// lock every new topic of the pattern out.
				h.logger.Warn("one subscriber may hold every topic of this pattern, leaving no room for new ones until it leaves; raise max_topics or lower max_topics_per_subscriber",
					zap.String("topic", d.Name), zap.Int("max_topics", d.MaxTopics),
					zap.Int("max_topics_per_subscriber", h.MaxTopicsPerSubscriber))
			}
		}
	}
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	h.app = app
	h.hub, h.table, err = app.Hub(h.Hub)
	if err != nil {
		return err
	}
	if h.cors, err = stream.NewCORSPolicy(h.Origins); err != nil {
		return fmt.Errorf("sse: %v", err)
	}
	if err := h.setupPresence(); err != nil {
		return err
	}
	if err := app.Declare(h.Hub, h.table, decls); err != nil {
		return err
	}
	h.streamer = &stream.Streamer{
		QueueSize:      h.QueueSize,
		WriteTimeout:   time.Duration(h.WriteTimeout),
		Retry:          time.Duration(h.Retry),
		Heartbeat:      h.heartbeat,
		Coalesce:       h.coalesce,
		MaxSubscribers: h.MaxSubscribers,
		Stopping:       app.stopping,
		Logger:         h.logger,
	}
	h.logger.Info("sse handler ready",
		zap.String("hub", h.Hub),
		zap.Strings("topics", describeTopics(decls)),
		zap.Stringer("heartbeat", h.heartbeat),
		zap.Int("max_subscribers", h.MaxSubscribers),
		zap.Int("queue", h.Queue),
		zap.String("queue_size", humanize.IBytes(uint64(h.QueueSize))),
		zap.Stringer("write_timeout", time.Duration(h.WriteTimeout)))
	return nil
}

// Cleanup releases what the handler took from pools.
func (h *SSEHandler) Cleanup() error {
	h.releasePresence()
	return nil
}

// Validate checks the handler's settings.
func (h *SSEHandler) Validate() error {
	switch {
	case len(h.Topics) == 0:
		return errors.New("sse: no topic declared")
	case h.heartbeat < 0:
		return errors.New("sse: heartbeat must not be negative")
	case h.coalesce < 0 || h.coalesce > time.Second:
		return errors.New("sse: coalesce must be between 0 and 1s")
	case h.Retry < 0:
		return errors.New("sse: retry must not be negative")
	case h.MaxSubscribers < 0:
		return errors.New("sse: max_subscribers must not be negative")
	case h.Queue < 0:
		return errors.New("sse: queue must not be negative")
	case h.QueueSize < 0 || h.QueueSize > hub.MaxSize:
		return errors.New("sse: queue_size must not be negative or over 1TiB")
	case h.WriteTimeout < 0:
		return errors.New("sse: write_timeout must not be negative")
	case h.MaxTopicsPerSubscriber < 0:
		return errors.New("sse: max_topics_per_subscriber must not be negative")
	}
	return nil
}

// ServeHTTP serves an event stream. The subscriber is registered with the
// hub before anything is flushed, so once a client has read the opening
// comment, every event published after that reaches it.
func (h *SSEHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if h.cors != nil {
		if answered, err := h.cors.Handle(w, r); answered {
			return err
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return stream.PlainError(w, http.StatusMethodNotAllowed, "event streams are read with GET")
	}
	// Parse the query strictly: URL.Query drops what it cannot parse, and a
	// mistyped ?topic= must not quietly become "all topics".
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return stream.PlainError(w, http.StatusBadRequest, "malformed query: "+err.Error())
	}
	refs, status, msg := h.resolveTopics(r, query)
	if status != 0 {
		return stream.PlainError(w, status, msg)
	}

	if stream.Headers(w, r, "no-cache, no-transform") {
		return nil
	}

	if !h.streamer.Enter() {
		return h.streamer.ComeBackLater(w, "too many subscribers on this route")
	}

	sub, replay, err := h.hub.SubscribeWith(refs, hub.SubscribeOptions{Resume: lastEventID(r, query), QueueLen: h.Queue})
	if errors.Is(err, hub.ErrTooManyTopics) {
		h.streamer.Leave()
		return h.streamer.ComeBackLater(w, "too many topics in this hub")
	}
	if err != nil {
		h.streamer.Leave()
		return stream.PlainError(w, http.StatusServiceUnavailable, "event hub unavailable: "+err.Error())
	}
	left := h.presenceJoin(r, refs)
	release := func() {
		h.streamer.Leave()
		left()
	}
	if c := h.logger.Check(zap.DebugLevel, "subscribed"); c != nil {
		c.Write(zap.Strings("topics", stream.TopicNames(refs)), zap.String("client", stream.ClientForLog(r)),
			zap.Int("replayed", len(replay.Events)), zap.Bool("reset", replay.Reset != nil))
	}
	return h.streamer.Stream(w, r, sub, replay, refs, time.Time{}, release)
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
	var names []string
	if requested := query["topic"]; len(requested) > 0 {
		names, status, msg = h.pickTopics(requested, func(t string) (int, string) {
			// An internal name is answered as any name the route does not
			// serve; serves would refuse it too (MatchSegments).
			if hub.ClientTopicName(t) != nil || !h.serves(t, offered) {
				return http.StatusNotFound, fmt.Sprintf("topic %q is not served here", t)
			}
			return 0, ""
		})
		if status != 0 {
			return nil, status, msg
		}
	} else {
		names = append(append(names, h.literals...), offered...)
		if len(names) == 0 {
			return nil, http.StatusBadRequest, "name the topics to subscribe to with ?topic="
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

// pickTopics checks a request's ?topic= names against what the route
// allows it, for routes with a grant (grant.go) and without: at most
// MaxTopicsPerSubscriber names, each a valid name that refuse accepts
// (refuse returns a refusal's status and message, or 0), without repeats.
func (h *SSEHandler) pickTopics(requested []string, refuse func(name string) (int, string)) ([]string, int, string) {
	if len(requested) > h.MaxTopicsPerSubscriber {
		return nil, http.StatusBadRequest, fmt.Sprintf("%d topics requested; this route allows %d per connection", len(requested), h.MaxTopicsPerSubscriber)
	}
	names := make([]string, 0, len(requested))
	for _, t := range requested {
		if err := hub.ValidTopicName(t); err != nil {
			return nil, http.StatusBadRequest, err.Error()
		}
		if status, msg := refuse(t); status != 0 {
			return nil, status, msg
		}
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	return names, 0, ""
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

// Interface guards
var (
	_ caddy.Provisioner           = (*SSEHandler)(nil)
	_ caddy.Validator             = (*SSEHandler)(nil)
	_ caddy.CleanerUpper          = (*SSEHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*SSEHandler)(nil)
)
