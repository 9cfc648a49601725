package caddysse

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"
)

// mercureSubscribeRequest is what a subscribe query asks for.
type mercureSubscribeRequest struct {
	Selectors []MercureSelector
	// Resume is the resume point: the Last-Event-ID header, else the
	// lastEventID query parameter (0.x and draft-08), else last_event_id
	// (the sse route's spelling). "" when none was given.
	Resume string
	// Earliest: the resume point is the reserved value "earliest".
	Earliest bool
}

// parseMercureSubscribe reads the selectors and the resume point of a
// subscribe request. Every selector parameter counts (topic, match,
// matchURLPattern and their spellings, mercure_selectors.go); a parameter
// in the reserved match namespace that is no matcher type is a 400, as is
// a request without any selector.
func parseMercureSubscribe(query url.Values, header http.Header) (*mercureSubscribeRequest, *mercureRefusal) {
	req := &mercureSubscribeRequest{}
	// Sorted: the order of a map's keys is random, and an error must name
	// the same parameter every time.
	for _, name := range slices.Sorted(maps.Keys(query)) {
		t, ok, err := MercureSubscribeParam(name)
		if err != nil {
			return nil, badMercureRequest("%v", err)
		}
		if !ok {
			continue
		}
		for _, v := range query[name] {
			req.Selectors = append(req.Selectors, MercureSelector{Type: t, Value: v})
		}
	}
	if len(req.Selectors) == 0 {
		return nil, badMercureRequest("name the topics to receive with topic= (0.x), match= or matchURLPattern= (1.0)")
	}
	req.Resume = header.Get("Last-Event-ID")
	for _, name := range []string{"lastEventID", "last_event_id"} {
		if req.Resume != "" {
			break
		}
		switch vs := query[name]; len(vs) {
		case 0:
		case 1:
			req.Resume = vs[0]
		default:
			return nil, badMercureRequest("give one %s, not %d", name, len(vs))
		}
	}
	if req.Resume == "earliest" {
		req.Resume, req.Earliest = "", true
	}
	return req, nil
}

// subscribe serves a GET or HEAD: the subscriber's selectors route updates
// to it, its token's subscribe selectors open private ones; both are
// compiled once, here, into a decider that the hub's filter asks for every
// update (under the hub's lock: a map lookup for a known topic).
func (m *MercureHandler) subscribe(w http.ResponseWriter, r *http.Request) error {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return m.refuse(w, r, badMercureRequest("malformed query: %v", err))
	}
	req, refusal := parseMercureSubscribe(query, r.Header)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	hubURL := mercureHubURL(r).String()
	subscribed, err := m.querySels.CompileAll(req.Selectors, hubURL)
	if err != nil {
		return m.refuse(w, r, badMercureRequest("%v", err))
	}
	grant, refusal := m.verify(r, m.auth.Subscriber, !m.Anonymous)
	if refusal != nil {
		return m.refuse(w, r, refusal)
	}
	var private []*MercureMatcher
	var expires time.Time
	if grant != nil {
		if private, err = m.tokenSels.CompileAll(grantSelectors(grant.Subscribe), hubURL); err != nil {
			return m.refuse(w, r, &mercureRefusal{Status: http.StatusUnauthorized, Code: "invalid_token",
				Msg: "invalid token", Reason: err.Error()})
		}
		expires = grant.Expires
	}
	decider := m.querySels.Decider(subscribed, private)

	// private: a stream authorized by a token must not be cached for others.
	if streamHeaders(w, r, "private, no-cache, no-transform") {
		return nil
	}
	hdr := w.Header()
	resuming := req.Resume != "" || req.Earliest
	opts := SubscribeOptions{
		Resume:   req.Resume,
		Earliest: req.Earliest,
		QueueLen: m.Queue,
		Filter: func(ev *Event) bool {
			meta, _ := ev.Decoded(decodeMercureMeta).(*mercureMeta)
			return meta != nil && decider.Allows(meta.Topics, meta.Private)
		},
	}
	if resuming && !req.Earliest {
		opts.Predecessor = DefaultMercurePredecessorScan
	}
	refs := []TopicRef{m.ref}
	if m.subs != nil && len(private) > 0 {
		// Subscription events are private: only a subscriber whose token
		// has subscribe selectors can be allowed one, so only those read
		// their topic (each event costs a filter call per reader).
		refs = append(refs, m.subsRef)
	}
	if n := m.streamer.subscribers.Add(1); m.MaxSubscribers > 0 && n > int64(m.MaxSubscribers) {
		m.streamer.subscribers.Add(-1)
		return m.streamer.comeBackLater(w, "too many subscribers on this route")
	}
	sub, replay, err := m.hub.SubscribeWith(refs, opts)
	if err != nil {
		m.streamer.subscribers.Add(-1)
		if errors.Is(err, ErrTooManyTopics) {
			return m.streamer.comeBackLater(w, "too many topics in this hub")
		}
		return m.refuse(w, r, &mercureRefusal{Status: http.StatusServiceUnavailable, Msg: "event hub unavailable: " + err.Error()})
	}
	if resuming {
		// draft-08: where the stream starts, as the id of the newest
		// update before it that this subscriber may see, else "earliest"
		// (an unknown resume point, or nothing visible before it).
		lei := replay.Predecessor
		if lei == "" {
			lei = "earliest"
		}
		hdr.Set("Last-Event-ID", lei)
		// Earlier 1.0 drafts, and DESIGN.md, name it Mercure-Last-Event-ID:
		// clients written against them read that one.
		hdr.Set("Mercure-Last-Event-ID", lei)
	}
	if c := m.logger.Check(zap.DebugLevel, "mercure subscriber"); c != nil {
		c.Write(zap.Int("selectors", len(subscribed)), zap.Bool("token", grant != nil),
			zap.String("resume", req.Resume), zap.Bool("earliest", req.Earliest),
			zap.Int("replayed", len(replay.Events)), zap.String("client", clientForLog(r)))
	}
	// The stream ends by the token's exp (draft-08): the client reconnects
	// with a fresh token, or is refused.
	var end <-chan struct{}
	release := func() {}
	if !expires.IsZero() {
		ch := make(chan struct{})
		t := time.AfterFunc(time.Until(expires), func() { close(ch) })
		end, release = ch, func() { t.Stop() }
	}
	// The subscriptions end when the stream does: release runs then,
	// also for an HTTP/1.1 stream served on after this returns.
	leave := m.subscriptionsJoin(r, subscribed, private, grant)
	stop := release
	release = func() { stop(); leave(); m.streamer.subscribers.Add(-1) }
	return m.streamer.stream(w, r, sub, replay, refs, end, release)
}
