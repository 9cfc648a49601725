package caddysse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/stream"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

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

	sub, replay, err := h.hub.Subscribe(refs, lastEventID(r, query), h.Queue)
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
	return h.streamer.Stream(w, r, sub, replay, refs, nil, release)
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
